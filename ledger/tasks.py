"""Ledger jobs: thin wrappers around the services, each safe to run twice or at the same time.

The services claim their rows under the account lock, so a second run (beat firing twice, a
redelivered message after a worker died: acks_late) finds nothing left to do. Retries are bounded
and only for database hiccups (the project's base task, loyalty_site.celery); a domain refusal is
not retried.
"""

import logging
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ledger import selectors, services

logger = logging.getLogger(__name__)


@shared_task(name="ledger.points_expire", ignore_result=True)
def points_expire() -> int:
    """Nightly: hand the due accounts out in chunks, each its own short task, so that a worker
    lost mid-run costs one chunk, redelivered after CELERY_VISIBILITY_TIMEOUT, not the night.
    Every chunk expires as of the same moment. Returns how many chunks were sent."""
    now = timezone.now()
    due = selectors.accounts_expiring(now=now)
    size = settings.LOYALTY_JOB_CHUNK_SIZE
    chunks = [due[i : i + size] for i in range(0, len(due), size)]
    for chunk in chunks:
        points_expire_chunk.delay(chunk, now.isoformat())
    return len(chunks)


@shared_task(name="ledger.points_expire_chunk", ignore_result=True)
def points_expire_chunk(account_ids: list[int], now: str) -> int:
    return services.points_expire(now=datetime.fromisoformat(now), account_ids=account_ids)


@shared_task(name="ledger.points_mature", ignore_result=True)
def points_mature() -> int:
    return services.points_mature()


@shared_task(name="ledger.holds_expire", ignore_result=True)
def holds_expire() -> int:
    return services.holds_expire()


@shared_task(name="ledger.ledger_reconcile", ignore_result=True)
def ledger_reconcile() -> int:
    """Log every account whose stored totals disagree with its entries, lots, holds or pending."""
    mismatches = 0
    for account, problems in selectors.ledger_mismatches():
        mismatches += 1
        logger.error(
            "ledger mismatch",
            extra={"account_id": account.pk, "member_id": account.member_id, "problems": problems},
        )
    if mismatches:
        logger.error("ledger reconciliation found mismatches", extra={"accounts": mismatches})
    else:
        logger.info("ledger reconciled")
    return mismatches
