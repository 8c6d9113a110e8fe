"""The pages' middleware, skipped for the channel API (`/api/v1/`).

A channel request carries a key, not a session: it has no use for sessions, CSRF, the staff
user, flash messages or htmx, and paid for each of them on every earn.
`pages_only(Middleware)` keeps a middleware in its place in ``settings.MIDDLEWARE`` (so the
order, and every hook Django collects from it, stay as they were for pages) and passes an API
request straight on. The security headers (SecurityMiddleware, X-Frame-Options, the CSP), the
language of an error (LocaleMiddleware), CommonMiddleware, the change log's request context
(auditlog) and the login lockout (axes: a check of one attribute) stay for every path. The
test client runs the same stack (tests/api/test_middleware.py).
"""

from django.contrib.auth.middleware import AuthenticationMiddleware as _Authentication
from django.contrib.messages.middleware import MessageMiddleware as _Messages
from django.contrib.sessions.middleware import SessionMiddleware as _Sessions
from django_htmx.middleware import HtmxMiddleware as _Htmx

API_PREFIX = "/api/v1/"
_HOOKS = ("process_view", "process_exception", "process_template_response")


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def pages_only(middleware_class):
    """A subclass of `middleware_class` (so the system checks that look for it still find it)
    that passes a channel API request straight on."""

    def __call__(self, request):
        if is_api(request):
            return self.get_response(request)
        return middleware_class.__call__(self, request)

    # Sync only (Django adapts it under ASGI): the __call__ above does not await.
    namespace = {
        "__call__": __call__,
        "__module__": __name__,
        "sync_capable": True,
        "async_capable": False,
    }
    # Django collects these hooks from the instance; an API request skips them. None means
    # "go on" for process_view and process_exception; process_template_response hands its
    # response back.
    for name in _HOOKS:
        hook = getattr(middleware_class, name, None)
        if hook is not None:
            namespace[name] = _for_pages(hook, template_response=name == _HOOKS[2])
    return type(middleware_class.__name__, (middleware_class,), namespace)


def _for_pages(hook, *, template_response: bool):
    def run(self, request, *args):
        if is_api(request):
            return args[0] if template_response else None
        return hook(self, request, *args)

    return run


SessionMiddleware = pages_only(_Sessions)
AuthenticationMiddleware = pages_only(_Authentication)
MessageMiddleware = pages_only(_Messages)
HtmxMiddleware = pages_only(_Htmx)
