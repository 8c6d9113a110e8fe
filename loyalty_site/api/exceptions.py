"""One error body for the whole API: `{"code": ..., "detail": ..., "fields": {...}}`.

`fields` is always an object whose values are lists of strings, keyed by the field's path:
`{"email": ["..."], "lines.0.amount": ["..."], "non_field_errors": ["..."]}`. Every answer is
built by `error_body`, which flattens whatever shape the error came in (a service's
`{name: message}`, DRF's nested dicts and lists, a bare list), so a channel parses one shape.
"""

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


NON_FIELD = "non_field_errors"


def error_fields(errors) -> dict[str, list[str]]:
    """`errors` as `{path: [message, ...]}`: nested objects and lists give dotted paths
    (`lines.0.amount`), a message or a list of messages without a name goes under
    `non_field_errors`, and a list serializer's items without an error leave no key."""
    flat: dict[str, list[str]] = {}

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                walk(item, f"{path}.{name}" if path else str(name))
        elif isinstance(value, list | tuple):
            # A list of messages, or a list serializer's errors: one (possibly empty) per item.
            if all(not isinstance(item, dict | list | tuple) for item in value):
                if value:
                    flat.setdefault(path or NON_FIELD, []).extend(str(item) for item in value)
                return
            for index, item in enumerate(value):
                walk(item, f"{path}.{index}" if path else str(index))
        elif value is not None and value != "":
            flat.setdefault(path or NON_FIELD, []).append(str(value))

    walk(errors or {}, "")
    return flat


def error_body(code: str, detail, fields=None) -> dict:
    """The one error body; `fields` in any shape an error may carry (see `error_fields`)."""
    return {"code": code, "detail": str(detail), "fields": error_fields(fields)}


def api_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.detail, exc.fields), status=exc.status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", _("Invalid input."), exc.detail)
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
