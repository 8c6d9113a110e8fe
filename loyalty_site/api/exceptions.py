"""One error body for the whole API: `{"code": ..., "detail": ..., "fields": {...}}`."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from loyalty_site.errors import DomainError

# The same 401 code whether the key is missing or wrong: a client does the same either way.
_CODES = {exceptions.AuthenticationFailed: "not_authenticated"}


def error_body(code: str, detail, fields: dict | None = None) -> dict:
    return {"code": code, "detail": str(detail), "fields": fields or {}}


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        fields = {name: str(message) for name, message in (exc.fields or {}).items()}
        return Response(error_body(exc.code, exc.detail, fields), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        response.data = error_body("invalid", _("Invalid input."), fields)
    else:
        code = _CODES.get(type(exc), exc.default_code)
        response.data = error_body(code, exc.detail if isinstance(exc.detail, str) else code)
    return response
