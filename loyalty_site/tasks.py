"""Celery tasks of the API layer: thin, idempotent, each calling one function."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ledger import selectors as ledger_selectors
from ledger.services import idempotency_purge
from loyalty_site import webhooks
from members.models import Member


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
    return idempotency_purge()


@shared_task(name="loyalty_site.webhook_deliveries_purge", ignore_result=True)
def webhook_deliveries_purge() -> int:
    return webhooks.deliveries_purge()


@shared_task(name="loyalty_site.points_expiring_soon_notify", ignore_result=True)
def points_expiring_soon_notify() -> int:
    """Daily: a `points.expiring_soon` event per member whose first expiring points come within
    LOYALTY_WEBHOOK_EXPIRING_DAYS days. Only expiries entering that horizon in the last day are
    announced, so one daily run announces each expiry date once."""
    now = timezone.now()
    days = settings.LOYALTY_WEBHOOK_EXPIRING_DAYS
    horizon_start = now + timedelta(days=days - 1)
    rows = [
        row
        for row in ledger_selectors.points_expiring_soon(days=days, now=now)
        if row["first_expiry"] > horizon_start
    ]
    public_ids = dict(
        Member.objects.filter(pk__in=[r["member_id"] for r in rows]).values_list("pk", "public_id")
    )
    for row in rows:
        webhooks.event_emit(
            event_type="points.expiring_soon",
            data={
                "member": public_ids[row["member_id"]],
                "points": row["points"],
                "expires_at": row["first_expiry"],
            },
        )
    return len(rows)
