"""Celery tasks of the API layer: thin, idempotent, each calling one function."""

from celery import shared_task

from ledger.services import idempotency_purge
from loyalty_site import webhooks


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
    """Daily; safe to run again or on two workers at once (see points_expiring_soon_announce)."""
    return webhooks.points_expiring_soon_announce()
