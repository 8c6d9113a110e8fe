"""One error body for the whole API: `{"code": ..., "detail": ..., "fields": {...}}`."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, JsonResponse
from django.utils.translation import gettext_lazy as _
from django.views import defaults
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


# Errors raised outside DRF's views (a middleware, the URL resolver, an exception DRF does not
# know) reach Django's handlers: under /api/ they answer the same JSON body, never an HTML page.
def _api_path(request) -> bool:
    return request.path_info.startswith("/api/")


def handler400(request, exception=None):
    if not _api_path(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        body = error_body("request_too_large", _("The request body is too large."))
        return JsonResponse(body, status=413)
    return JsonResponse(error_body("invalid", _("Invalid input.")), status=400)


def handler403(request, exception=None):
    if not _api_path(request):
        return defaults.permission_denied(request, exception)
    detail = exceptions.PermissionDenied.default_detail
    return JsonResponse(error_body("permission_denied", detail), status=403)


def handler404(request, exception=None):
    if not _api_path(request):
        return defaults.page_not_found(request, exception)
    return JsonResponse(error_body("not_found", exceptions.NotFound.default_detail), status=404)


def handler500(request):
    if not _api_path(request):
        return defaults.server_error(request)
    return JsonResponse(error_body("server_error", _("Server error.")), status=500)
