"""Celery tasks of the API layer: thin, idempotent, each calling one function.

The scheduled ones are a coordinator that lists what is due as of one moment and sends chunk
tasks with it (``members.jobs``); the coordinators return how many chunks they sent.
"""

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ledger import selectors as ledger_selectors
from ledger.services import idempotency_purge
from loyalty_site import webhooks
from loyalty_site.dashboard import days as dashboard_days
from members.jobs import chunks_send, moment_parse


@shared_task(name="loyalty_site.webhook_deliver", ignore_result=True)
def webhook_deliver(delivery_id: int) -> None:
    wait = webhooks.delivery_send(delivery_id=delivery_id)
    if wait is not None:
        # Back-off by a new message rather than self.retry(): the attempt count lives in the row,
        # so a lost or duplicated message neither loses nor doubles an attempt.
        webhook_deliver.apply_async((delivery_id,), countdown=wait)


@shared_task(name="loyalty_site.idempotency_records_purge", ignore_result=True)
def idempotency_records_purge() -> int:
    # Records older than LOYALTY_IDEMPOTENCY_TTL_HOURS; a retry after that is a new request.
    now = timezone.now()
    due = ledger_selectors.due_ids(ledger_selectors.idempotency_records_expired(now=now))
    return chunks_send(idempotency_records_purge_chunk, due, at=now)


@shared_task(name="loyalty_site.idempotency_records_purge_chunk", ignore_result=True)
def idempotency_records_purge_chunk(ids: list[int], now: str) -> int:
    return idempotency_purge(now=moment_parse(now), ids=ids)


@shared_task(name="loyalty_site.webhook_deliveries_purge", ignore_result=True)
def webhook_deliveries_purge() -> int:
    now = timezone.now()
    due = ledger_selectors.due_ids(webhooks.deliveries_purgeable(now=now))
    return chunks_send(webhook_deliveries_purge_chunk, due, at=now)


@shared_task(name="loyalty_site.webhook_deliveries_purge_chunk", ignore_result=True)
def webhook_deliveries_purge_chunk(ids: list[int], now: str) -> int:
    return webhooks.deliveries_purge(now=moment_parse(now), ids=ids)


@shared_task(name="loyalty_site.points_expiring_soon_notify", ignore_result=True)
def points_expiring_soon_notify() -> int:
    """Daily; safe to run again or on two workers at once (see points_expiring_soon_announce)."""
    now = timezone.now()
    due = webhooks.members_expiring_soon(now=now)
    return chunks_send(points_expiring_soon_notify_chunk, due, at=now)


@shared_task(name="loyalty_site.points_expiring_soon_notify_chunk", ignore_result=True)
def points_expiring_soon_notify_chunk(member_ids: list[int], now: str) -> int:
    return webhooks.points_expiring_soon_announce(now=moment_parse(now), member_ids=member_ids)


@shared_task(name="loyalty_site.dashboard_refresh", ignore_result=True)
def dashboard_refresh(days: int = 2) -> int:
    """The dashboard's daily rows: yesterday and today (hourly), or the last `days` days (the
    nightly run, for purchases that arrive late). Idempotent: each day's row is upserted."""
    return dashboard_days.days_refresh_due(days=days)


@shared_task(name="loyalty_site.dashboard_refresh_late", ignore_result=True)
def dashboard_refresh_late() -> int:
    """Nightly: the last LOYALTY_LATE_PURCHASE_DAYS days again, so that a purchase a till sends
    late (it counts on the day it happened) reaches that day's row."""
    return dashboard_days.days_refresh_due(days=settings.LOYALTY_LATE_PURCHASE_DAYS + 1)
