"""`/healthz`: is this process able to do its work? Checks the database and the broker.

`/healthz/workers`: does any Celery worker answer a ping? Apart, because a load balancer must not
take the web processes out of service when the workers are down, and a ping waits up to
LOYALTY_HEALTH_PING_SECONDS for answers: for monitoring, not for every probe.
"""

import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from loyalty_site.celery import app as celery_app

logger = logging.getLogger(__name__)


def _check_database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    # ensure_connection with a short retry budget: a load balancer's probe must answer fast.
    with celery_app.connection() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
    return "ok"


@never_cache
@require_GET
def healthz(request):
    checks = {}
    healthy = True
    for name, check in (("database", _check_database), ("broker", _check_broker)):
        try:
            checks[name] = check()
        except Exception as exc:  # any failure means "not healthy"; the reason goes to the log
            logger.warning("health check failed", extra={"check": name, "error": str(exc)})
            checks[name] = "error"
            healthy = False
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks},
        status=200 if healthy else 503,
    )


@never_cache
@require_GET
def healthz_workers(request):
    try:
        replies = celery_app.control.ping(timeout=settings.LOYALTY_HEALTH_PING_SECONDS)
    except Exception as exc:  # the broker itself is down: no worker can be reached
        logger.warning("worker ping failed", extra={"error": str(exc)})
        replies = []
    workers = sorted(name for reply in replies for name in reply)
    return JsonResponse(
        {"status": "ok" if workers else "error", "workers": workers},
        status=200 if workers else 503,
    )
