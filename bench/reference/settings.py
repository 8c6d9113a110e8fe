"""The reference app's settings: no middleware, no apps beyond DRF, the product's database.

Served by the product's gunicorn.conf.py (same workers, same worker class), so that the two
differ only in what runs inside a request.
"""

import dj_database_url

from loyalty_site.env import env_bool, env_int, env_str

DEBUG = False
SECRET_KEY = "bench-reference-" + "x" * 50  # signs nothing: no sessions, no cookies
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.reference.urls"
USE_TZ = True
USE_I18N = False
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", ""),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
# Django's defaults: client-side binding, no prepared statements. BENCH_REFERENCE_PREPARED=true
# gives the reference the product's (loyalty_site/settings.py), to show what they are worth to
# hand-written SQL too.
if env_bool("BENCH_REFERENCE_PREPARED", False):
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_THROTTLE_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
}
# The product keeps a checked channel key this long (LOYALTY_CONFIG_CACHE_SECONDS); so does
# the reference, so that neither pays a slow hash per request.
KEY_CACHE_SECONDS = env_int("LOYALTY_CONFIG_CACHE_SECONDS", 5, minimum=0)
