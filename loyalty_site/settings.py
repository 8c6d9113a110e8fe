"""Settings, read from environment variables.

The defaults give the embedded mode (SQLite in ``var/``, a file-system Celery broker, no
services to start). Production names its PostgreSQL and Redis with ``DATABASE_URL`` and
``CELERY_BROKER_URL`` and switches on ``HTTPS``; the same code runs both ways, there is no
production-only branch. The README lists every variable.
"""

import secrets
from decimal import Decimal, InvalidOperation
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from loyalty_site.env import env_bool, env_choice, env_int, env_list, env_str
from loyalty_site.rates import rate_parse

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("LOYALTY_VAR_DIR", str(BASE_DIR / "var")))


def _embedded_secret_key() -> str:
    # Without SECRET_KEY we keep a random key in var/ so that sessions survive restarts in the
    # embedded mode and no key is ever committed. Several web processes must share SECRET_KEY.
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


def _decimal(name: str, default: str) -> Decimal:
    raw = env_str(name, default)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name} must be a decimal number, got {raw!r}") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, got {raw!r}")
    return value


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "") or _embedded_secret_key()
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "loyalty_site.third_party_apps.APIKeysConfig",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "loyalty_site.third_party_apps.ScheduledJobsConfig",
    "import_export",
    # The configuration's change log (who changed which rule, tier, reward, campaign, and how):
    # registered per model in each app's ready(); never on members, cards or consents.
    "auditlog",
    "loyalty_site.third_party_apps.LoginAttemptsConfig",
    "phonenumber_field",
    "csp",
    "django_htmx",
    "loyalty_site",
    "members",
    "ledger",
    "rewards",
    "campaigns",
]

# loyalty_site.api.middleware.*: the pages' middleware, passed by for the channel API
# (/api/v1/), whose requests carry a key, not a session; each keeps its place for pages.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Outermost after security, so that every answer, a lockout page too, carries the policy.
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "loyalty_site.api.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Django's own, by its dotted path: check --deploy looks for that string (security.W003).
    # The channel API's views are csrf_exempt (DRF), so it costs an API request a lookup only.
    "django.middleware.csrf.CsrfViewMiddleware",
    "loyalty_site.api.middleware.AuthenticationMiddleware",
    "loyalty_site.api.middleware.MessageMiddleware",
    # After authentication: it records request.user as the actor of each configuration change.
    "auditlog.middleware.AuditlogMiddleware",
    # request.htmx: a page answers an htmx request (a live count, a progress bar) with a fragment.
    "loyalty_site.api.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Axes must come last: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "loyalty_site.urls"
WSGI_APPLICATION = "loyalty_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "loyalty_site.navigation.context",
            ],
        },
    },
]

# --- Database ---
# On PostgreSQL, psycopg sends a statement's parameters beside it (server-side binding, the
# extended protocol) instead of quoting them into its text, and prepares a statement on its
# connection once it has run 5 times there: PostgreSQL then parses and plans it once per
# connection instead of on every request. Django's default is neither (client-side binding, no
# prepared statements). Measured in one process (bench/api_profile.py): an earn's CPU 3.45 ->
# 3.0 ms in the web process and 1.8 -> 1.1 ms in the database server's; a balance lookup 1.28 ->
# 1.10 and 0.45 -> 0.2 ms. DATABASE_POOLER=transaction turns the prepared statements off again.
_SERVER_BINDING = {"server_side_binding": True, "prepare_threshold": 5}
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
try:
    _db = dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
except ValueError as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
if _db["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Web server, worker and beat share one file in the embedded mode: WAL lets readers run
    # beside the writer, IMMEDIATE transactions take the write lock up front (SQLite's answer to
    # SELECT ... FOR UPDATE) and the timeout makes a writer wait instead of failing at once.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    _db["TEST"] = {"NAME": None}
elif _db["ENGINE"] in {"django.db.backends.postgresql"}:
    _db.setdefault("OPTIONS", {})
    _db["OPTIONS"].update(_SERVER_BINDING)
else:
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL or SQLite database")
DATABASES = {"default": _db}

# DATABASE_POOLER=transaction: the database is reached through PgBouncer (or another pooler) in
# transaction mode, where consecutive transactions of one process may run on different server
# connections. The app keeps no session state across transactions (locks are transaction-scoped
# pg_advisory_xact_lock, SET is SET LOCAL, temporary tables are dropped on commit), but two
# things Django and psycopg do by default are session state: server-side cursors
# (QuerySet.iterator() outside a transaction) and prepared statements. Both are turned off.
DATABASE_POOLER = env_choice("DATABASE_POOLER", "session", {"session", "transaction"})


def _pooled(database: dict) -> dict:
    if DATABASE_POOLER == "transaction":
        database["DISABLE_SERVER_SIDE_CURSORS"] = True
        # psycopg 3 prepares a statement run 5 times on a connection; with None it never does.
        database["OPTIONS"]["prepare_threshold"] = None
    return database


# DATABASE_REPLICA_URL: a streaming replica of DATABASE_URL that reports and exports read
# (members.replica: the finance report, its exports, the exports page's jobs, the dashboard's
# daily figures); writes never go there. Unset, everything uses DATABASE_URL.
DATABASE_REPLICA_URL = env_str("DATABASE_REPLICA_URL", "")
if _db["ENGINE"] == "django.db.backends.postgresql":
    _pooled(_db)
    if DATABASE_REPLICA_URL:
        try:
            _replica = dj_database_url.parse(
                DATABASE_REPLICA_URL,
                conn_max_age=_db["CONN_MAX_AGE"],
                conn_health_checks=True,
            )
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"DATABASE_REPLICA_URL is not a valid database URL: {exc}"
            ) from None
        if _replica["ENGINE"] != "django.db.backends.postgresql":
            raise ImproperlyConfigured("DATABASE_REPLICA_URL must name a PostgreSQL database")
        _replica["OPTIONS"] = {**(_replica.get("OPTIONS") or {}), **_SERVER_BINDING}
        # In tests the replica is the test database itself, under a second connection.
        _replica["TEST"] = {"MIRROR": "default"}
        DATABASES["replica"] = _pooled(_replica)
elif DATABASE_REPLICA_URL or DATABASE_POOLER != "session":
    raise ImproperlyConfigured("DATABASE_REPLICA_URL and DATABASE_POOLER need PostgreSQL")
DATABASE_ROUTERS = ["members.replica.ReplicaRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth and security ---
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# Login throttling: after AXES_FAILURE_LIMIT failures for one user name from one address the
# pair is locked out for AXES_COOLOFF_MINUTES.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 30, minimum=1) / 60
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_IPWARE_PROXY_COUNT = env_int("PROXY_COUNT", 0, minimum=0)

# HTTPS=true behind TLS: secure cookies, HSTS and redirect to https. `make run` serves plain
# http on localhost and leaves it off.
HTTPS = env_bool("HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("HSTS_SECONDS", 31536000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if env_bool("BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Content-Security-Policy on every page: scripts, styles, images and fonts from our own origin
# only. Inline code runs only with the request's nonce, which the two pages that need it put on
# their tags (the API docs, templates/drf_spectacular/swagger_ui.html; the periodic task form,
# templates/admin/djcelery/); the header names a nonce only on a page that used one. data:
# images are Swagger UI's and the admin's icons in their style sheets.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600, minimum=60)

# --- Internationalisation ---
LANGUAGE_CODE = env_choice("LANGUAGE_CODE", "en", {"en", "nl"})
LANGUAGES = [("en", _("English")), ("nl", _("Dutch"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Europe/Amsterdam")
USE_I18N = True
USE_TZ = True

# --- Static files ---
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Tests and `make run` serve static files straight from the finders, no collectstatic needed.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)

# --- E-mail ---
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "loyalty@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Cache ---
# The API's per-channel request counters live here. The default keeps them per process (N web
# processes allow N times a channel's rate); a Redis URL shares them between all processes.
CACHE_URL = env_str("CACHE_URL", "locmem://")
if CACHE_URL.startswith("locmem://"):
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
elif CACHE_URL.startswith(("redis://", "rediss://", "unix://")):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": CACHE_URL,
            "KEY_PREFIX": "loyalty",
            # An unreachable cache must not stall a request: the throttle then lets it through.
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
else:
    raise ImproperlyConfigured("CACHE_URL must be locmem:// or a redis:// URL")

# --- Celery ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded broker: messages are files in var/broker, no server to run.
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # kombu's exchange table; by default a "control" folder in the working directory.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
else:
    # A task that is not acknowledged within the visibility timeout is delivered again: that is
    # how a task lost with its worker runs again, so it is short (long jobs work in chunks). It
    # must exceed the longest task (CELERY_TASK_TIME_LIMIT) and the longest countdown we use
    # (a webhook retry, at most LOYALTY_WEBHOOK_RETRY_MAX_SECONDS).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 1800, minimum=60)
    }
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 1500, minimum=10)
# Accounts (or members) per chunk of a nightly job: each chunk is its own task.
LOYALTY_JOB_CHUNK_SIZE = env_int("LOYALTY_JOB_CHUNK_SIZE", 1000, minimum=1)
# A job started from a page (a simulation, an export; members.background) and its file are kept
# this many days, then purged nightly.
LOYALTY_BACKGROUND_JOB_KEEP_DAYS = env_int("LOYALTY_BACKGROUND_JOB_KEEP_DAYS", 7, minimum=1)
# How long /healthz/workers waits for the workers' answers to its ping.
LOYALTY_HEALTH_PING_SECONDS = env_int("LOYALTY_HEALTH_PING_SECONDS", 2, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
DJANGO_CELERY_BEAT_TZ_AWARE = True

# --- API ---
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["loyalty_site.api.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": ["loyalty_site.api.authentication.ChannelKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["loyalty_site.api.permissions.ChannelScope"],
    "DEFAULT_THROTTLE_CLASSES": ["loyalty_site.api.throttling.ChannelRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "loyalty_site.api.pagination.LedgerCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "loyalty_site.api.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Loyalty channel API",
    "DESCRIPTION": "Real-time earn and burn for tills, webshop, app and partners.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI's files come from drf-spectacular-sidecar: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "loyalty_site.api.schema.strict_request_bodies",
        "loyalty_site.api.schema.error_components",
        "loyalty_site.api.schema.exactly_one_of",
        "loyalty_site.api.schema.response_links",
        "loyalty_site.api.schema.request_strings",
    ],
}

# --- The loyalty programme ---
LOYALTY_CURRENCY = env_str("LOYALTY_CURRENCY", "EUR")
# Money value of one point, for the liability report and pay-with-points.
LOYALTY_POINT_VALUE = _decimal("LOYALTY_POINT_VALUE", "0.01")
# Finance: an entry dated in a closed month is refused ("refuse", 409 period_closed) or posted
# now, in the open period, with a note of its date ("move").
LOYALTY_FINANCE_CLOSED_PERIOD = env_choice(
    "LOYALTY_FINANCE_CLOSED_PERIOD", "move", {"refuse", "move"}
)
# Finance: the share of issued points expected to be redeemed (deferred revenue), until finance
# records an estimate of its own; and the stand-alone selling price of one point.
LOYALTY_FINANCE_EXPECTED_REDEMPTION = _decimal("LOYALTY_FINANCE_EXPECTED_REDEMPTION", "0.80")
# Staff adjustments above this many points need a second staff user's approval.
LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = env_int(
    "LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD", 1000, minimum=0
)
# No staff adjustment, approved or not, moves more points than this (either sign): a typo of a
# few zeros is refused at the form and by the service.
LOYALTY_ADJUSTMENT_MAX_POINTS = env_int("LOYALTY_ADJUSTMENT_MAX_POINTS", 1_000_000, minimum=1)
# A staff user's adjustments of one day (absolute sum, programme's time zone) beyond this many
# points need a second staff user's approval, so a large adjustment cannot be split into small ones.
LOYALTY_ADJUSTMENT_DAILY_LIMIT = env_int("LOYALTY_ADJUSTMENT_DAILY_LIMIT", 2000, minimum=0)
# Each web process keeps earning rules, abuse rules, tiers, active challenges and channel keys
# this long (members.config_cache), so an admin edit or a key revocation takes up to this many
# seconds to reach every process. 0: read them on every request.
LOYALTY_CONFIG_CACHE_SECONDS = env_int("LOYALTY_CONFIG_CACHE_SECONDS", 5, minimum=0)

# --- campaigns: segments, campaigns, control groups ---
# The programme-wide holdout: this many of 10,000 buckets of members are in no campaign at all
# (campaigns.control). The salt fixes which members; changing it reshuffles the holdout.
LOYALTY_HOLDOUT_BASIS_POINTS = env_int("LOYALTY_HOLDOUT_BASIS_POINTS", 0, minimum=0, maximum=5000)
LOYALTY_HOLDOUT_SALT = env_int(
    "LOYALTY_HOLDOUT_SALT", 1_640_531_527, minimum=1, maximum=2_147_483_646
)
# The RFM presets score recency and frequency over this many days up to today.
LOYALTY_RFM_WINDOW_DAYS = env_int("LOYALTY_RFM_WINDOW_DAYS", 365, minimum=1, maximum=3660)
# Campaign results compare treated and control members also over this many days after a
# campaign ends (the follow-up window: did the effect last?).
LOYALTY_CAMPAIGN_FOLLOW_UP_DAYS = env_int("LOYALTY_CAMPAIGN_FOLLOW_UP_DAYS", 30, minimum=1)
# A personalised offer's "most-bought category" is the member's largest spend over this many
# days (campaigns.offers).
LOYALTY_OFFER_HISTORY_DAYS = env_int("LOYALTY_OFFER_HISTORY_DAYS", 365, minimum=1)

# --- campaigns: purchases, earning rules, engagement ---
# The largest amount one purchase may have (a till's typo, or a probe for overflows, otherwise
# earns millions of points).
LOYALTY_PURCHASE_MAX_AMOUNT = _decimal("LOYALTY_PURCHASE_MAX_AMOUNT", "100000.00")
# How far ahead of the server's clock a purchase's occurred_at may be (tills' clocks drift).
LOYALTY_PURCHASE_CLOCK_SKEW_SECONDS = env_int("LOYALTY_PURCHASE_CLOCK_SKEW_SECONDS", 300, minimum=0)
# How late a purchase may be uploaded (days after occurred_at); a channel's own
# late_purchase_days overrides it.
LOYALTY_LATE_PURCHASE_DAYS = env_int("LOYALTY_LATE_PURCHASE_DAYS", 30, minimum=0)
# Days a purchase's points stay pending before they can be spent (0: spendable at once).
LOYALTY_PENDING_DAYS = env_int("LOYALTY_PENDING_DAYS", 0, minimum=0)
# Per-channel override, e.g. "webshop=14,pos=0".
LOYALTY_PENDING_DAYS_BY_CHANNEL = {
    name.strip(): int(days)
    for name, _sep, days in (
        item.partition("=") for item in env_list("LOYALTY_PENDING_DAYS_BY_CHANNEL", [])
    )
}
# Points each party gets when a referred member's first purchase lands, unless an engagement
# kind with code "referral" says otherwise.
LOYALTY_REFERRAL_POINTS = env_int("LOYALTY_REFERRAL_POINTS", 250, minimum=0)

# --- Ledger (ledger app): expiry, holds, idempotency ---
# rolling: a lot expires LOYALTY_EXPIRY_MONTHS after it was earned. fixed: it is kept at least
# that long and expires at the end of the calendar period (LOYALTY_EXPIRY_PERIOD_MONTHS: 1, 3, 6
# or 12, i.e. month, quarter, half year, year) in which that falls. none: points never expire.
LOYALTY_EXPIRY_POLICY = env_choice("LOYALTY_EXPIRY_POLICY", "rolling", {"rolling", "fixed", "none"})
LOYALTY_EXPIRY_MONTHS = env_int("LOYALTY_EXPIRY_MONTHS", 24, minimum=1)
LOYALTY_EXPIRY_PERIOD_MONTHS = int(
    env_choice("LOYALTY_EXPIRY_PERIOD_MONTHS", "12", {"1", "3", "6", "12"})
)
# An open hold (points reserved at a till or checkout) is released after this many minutes.
LOYALTY_HOLD_TIMEOUT_MINUTES = env_int("LOYALTY_HOLD_TIMEOUT_MINUTES", 30, minimum=1)
# Stored answers to Idempotency-Key requests are kept this long, then purged.
LOYALTY_IDEMPOTENCY_TTL_HOURS = env_int("LOYALTY_IDEMPOTENCY_TTL_HOURS", 72, minimum=1)

# --- Members (members app) ---
# Phone numbers typed without a country code are read as numbers of this region (ISO 3166).
LOYALTY_PHONE_REGION = env_str("LOYALTY_PHONE_REGION", "NL")
PHONENUMBER_DEFAULT_REGION = LOYALTY_PHONE_REGION
PHONENUMBER_DB_FORMAT = "E164"
# The consent wording version recorded when a channel does not name one.
LOYALTY_CONSENT_WORDING_VERSION = env_str("LOYALTY_CONSENT_WORDING_VERSION", "1")

# --- Channel API (loyalty_site.api) and webhooks ---
# Requests per channel and period (s, min, hour, day); a channel's own rate overrides it.
LOYALTY_API_RATE = env_str("LOYALTY_API_RATE", "6000/min")
try:
    rate_parse(LOYALTY_API_RATE)
except ValueError:
    raise ImproperlyConfigured(
        f"LOYALTY_API_RATE must be a request rate such as 6000/min, got {LOYALTY_API_RATE!r}"
    ) from None
# A request whose key is in use by a running request waits this long for its answer, else 409.
LOYALTY_IDEMPOTENCY_WAIT_SECONDS = env_int("LOYALTY_IDEMPOTENCY_WAIT_SECONDS", 5, minimum=0)
# A claim without an answer after this long belongs to a crashed request and may be retried.
LOYALTY_IDEMPOTENCY_STALE_SECONDS = env_int("LOYALTY_IDEMPOTENCY_STALE_SECONDS", 120, minimum=10)
LOYALTY_WEBHOOK_MAX_ATTEMPTS = env_int("LOYALTY_WEBHOOK_MAX_ATTEMPTS", 8, minimum=1)
LOYALTY_WEBHOOK_RETRY_BASE_SECONDS = env_int("LOYALTY_WEBHOOK_RETRY_BASE_SECONDS", 30, minimum=1)
LOYALTY_WEBHOOK_RETRY_MAX_SECONDS = env_int("LOYALTY_WEBHOOK_RETRY_MAX_SECONDS", 1200, minimum=1)
_visibility = CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
if _visibility is not None and _visibility <= max(
    CELERY_TASK_TIME_LIMIT, LOYALTY_WEBHOOK_RETRY_MAX_SECONDS
):
    raise ImproperlyConfigured(
        "CELERY_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT and "
        "LOYALTY_WEBHOOK_RETRY_MAX_SECONDS: a running or waiting task would be delivered twice"
    )
LOYALTY_WEBHOOK_TIMEOUT_SECONDS = env_int("LOYALTY_WEBHOOK_TIMEOUT_SECONDS", 5, minimum=1)
LOYALTY_WEBHOOK_CACHE_SECONDS = env_int("LOYALTY_WEBHOOK_CACHE_SECONDS", 10, minimum=0)
LOYALTY_WEBHOOK_KEEP_DAYS = env_int("LOYALTY_WEBHOOK_KEEP_DAYS", 30, minimum=1)
# For tests and local development only: accept webhook URLs on loopback and private addresses,
# and plain http, so that a receiver on 127.0.0.1 works. `check --deploy` warns when it is on.
LOYALTY_WEBHOOK_ALLOW_PRIVATE = env_bool("LOYALTY_WEBHOOK_ALLOW_PRIVATE", False)
# `points.expiring_soon` is announced this many days before the points expire.
LOYALTY_WEBHOOK_EXPIRING_DAYS = env_int("LOYALTY_WEBHOOK_EXPIRING_DAYS", 30, minimum=1)

# --- Rewards (rewards app) ---
# A reserved redemption (reserve → confirm/cancel at a till or checkout) that is neither
# confirmed nor cancelled within this many minutes is released: points, stock and code return.
LOYALTY_RESERVATION_MINUTES = env_int("LOYALTY_RESERVATION_MINUTES", 15, minimum=1)

# --- Campaign messages (campaigns app: sends) ---
# Dotted paths of the SMS and push backends (campaigns.backends): the logging ones write each
# message to the log. E-mail goes through Django's EMAIL_BACKEND (console in the embedded mode).
LOYALTY_SMS_BACKEND = env_str("LOYALTY_SMS_BACKEND", "campaigns.backends.LoggingSmsBackend")
LOYALTY_PUSH_BACKEND = env_str("LOYALTY_PUSH_BACKEND", "campaigns.backends.LoggingPushBackend")
# A worker's claim on a message lasts this long; past it another worker may take the message
# over (after asking the backend whether it went out). Longer than the slowest send.
LOYALTY_MESSAGE_LEASE_SECONDS = env_int("LOYALTY_MESSAGE_LEASE_SECONDS", 600, minimum=10)
# A failed send is retried, waiting base · 2^(attempt-1) seconds (at most 20 min), until this
# many attempts; then it stays failed with its reason.
LOYALTY_MESSAGE_MAX_ATTEMPTS = env_int("LOYALTY_MESSAGE_MAX_ATTEMPTS", 4, minimum=1)
LOYALTY_MESSAGE_RETRY_BASE_SECONDS = env_int("LOYALTY_MESSAGE_RETRY_BASE_SECONDS", 60, minimum=1)
# {{ points_expiring }} in a message: the member's points expiring within this many days.
LOYALTY_MESSAGE_EXPIRING_DAYS = env_int("LOYALTY_MESSAGE_EXPIRING_DAYS", 30, minimum=1)

# --- Logging: one JSON object a line on stdout ---
LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", {"DEBUG", "INFO", "WARNING", "ERROR"})
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "loyalty_site.jsonlog.JsonFormatter"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "axes": {"level": "WARNING"},
    },
}

# django-import-export's own escaping (admin exports) only drops a leading "=". The back office's
# exports (loyalty_site/exports.py) escape every cell themselves: = + - @ tab and CR get a
# leading apostrophe.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = True
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True
