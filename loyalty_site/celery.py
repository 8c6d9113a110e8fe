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


app = Celery("loyalty_site", task_cls=LoyaltyTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
