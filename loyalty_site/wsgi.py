import os

from django.core.wsgi import get_wsgi_application
from django.db import connections
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
application = get_wsgi_application()
# Import every URLconf (the admin, the API, DRF) now, when the worker starts, not in its first
# request: on a busy machine that import took seconds, and a till's request waited for it.
get_resolver().url_patterns  # noqa: B018
# gunicorn forks its workers from this process (preload_app): they must not share a connection.
connections.close_all()
