"""The Celery app. Configuration comes from Django settings prefixed CELERY_."""

import os

from celery import Celery, Task
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")


class LoyaltyTask(Task):
    """The base of every task of the project (``@shared_task`` binds to this app).

    Celery reads these as class attributes when it registers a task, so every job retries the
    errors a worker really meets — the database restarting, a failover, a dropped connection
    (Django raises OperationalError or InterfaceError for them) — with back-off and a bound.
    A domain refusal or a bug is not retried: running again would give the same answer. Tasks
    are idempotent, so a retry after a half-done run does no harm.
    """

    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = 30
    retry_backoff_max = 600
    max_retries = 3


# Three queues, so that a send to a million members or a night of reports does not hold up the
# short jobs behind them (reservations and holds timing out, points maturing, webhooks):
# - sends: a campaign's send, its fan-out into chunks and the chunks of messages;
# - reports: the work of reading much to write little: the page's jobs (exports, simulations,
#   the liability per member, a reconciliation run now), the nightly reconciliation, the
#   dashboard's figures, campaign results and RFM scores;
# - default: everything else.
# Production runs a worker per queue (Procfile); `make run`'s one worker consumes all three.
QUEUES = ("default", "sends", "reports")
TASK_QUEUES = {
    "campaigns.campaign_send": "sends",
    "campaigns.messages_fan_out": "sends",
    "campaigns.messages_send_chunk": "sends",
    "campaigns.messages_retry": "sends",
    "members.job_run": "reports",
    "ledger.ledger_reconcile": "reports",
    "ledger.ledger_reconcile_chunk": "reports",
    "loyalty_site.dashboard_refresh": "reports",
    "loyalty_site.dashboard_refresh_late": "reports",
    "campaigns.results_refresh": "reports",
    "campaigns.rfm_scores_refresh": "reports",
}

app = Celery("loyalty_site", task_cls=LoyaltyTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_default_queue = "default"
app.conf.task_routes = {name: {"queue": queue} for name, queue in TASK_QUEUES.items()}
app.autodiscover_tasks()
