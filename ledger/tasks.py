"""Ledger jobs: thin wrappers around the services, each safe to run twice or at the same time.

Every scheduled job that walks many rows is a coordinator and a chunk task (``members.jobs``):
the coordinator lists what is due as of one moment and sends a chunk task per
LOYALTY_JOB_CHUNK_SIZE ids with that moment, so that a worker lost mid-run costs one chunk,
redelivered after CELERY_VISIBILITY_TIMEOUT, not the night. The coordinators return how many
chunks they sent. The services claim their rows under the account lock, so a second run (beat
firing twice, a redelivered message after a worker died: acks_late) finds nothing left to do.
Retries are bounded and only for database hiccups, deadlocks included (the project's base task,
loyalty_site.celery); a domain refusal is not retried.
"""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from ledger import selectors, services
from ledger.finance import reconciliation
from ledger.models import ReconciliationRun
from members.jobs import chunks_send, moment_parse

logger = logging.getLogger(__name__)


@shared_task(name="ledger.points_expire", ignore_result=True)
def points_expire() -> int:
    """Nightly: expire the due accounts' lots, in chunks of accounts."""
    now = timezone.now()
    return chunks_send(points_expire_chunk, selectors.accounts_expiring(now=now), at=now)


@shared_task(name="ledger.points_expire_chunk", ignore_result=True)
def points_expire_chunk(account_ids: list[int], now: str) -> int:
    return services.points_expire(now=moment_parse(now), account_ids=account_ids)


@shared_task(name="ledger.points_mature", ignore_result=True)
def points_mature() -> int:
    now = timezone.now()
    due = selectors.due_ids(selectors.pending_maturing(now=now))
    return chunks_send(points_mature_chunk, due, at=now)


@shared_task(name="ledger.points_mature_chunk", ignore_result=True)
def points_mature_chunk(ids: list[int], now: str) -> int:
    return services.points_mature(now=moment_parse(now), ids=ids)


@shared_task(name="ledger.holds_expire", ignore_result=True)
def holds_expire() -> int:
    now = timezone.now()
    due = selectors.due_ids(selectors.holds_timed_out(now=now))
    return chunks_send(holds_expire_chunk, due, at=now)


@shared_task(name="ledger.holds_expire_chunk", ignore_result=True)
def holds_expire_chunk(ids: list[int], now: str) -> int:
    return services.holds_expire(now=moment_parse(now), ids=ids)


@shared_task(name="ledger.ledger_reconcile", ignore_result=True)
def ledger_reconcile() -> int:
    """Nightly: check every account, in chunks of accounts (a read: safe to run again); the
    run and what its chunks find are stored (``ledger.finance.reconciliation``)."""
    ids = selectors.account_ids()
    run = reconciliation.reconciliation_start(
        trigger=ReconciliationRun.Trigger.NIGHTLY,
        account_ids=ids,
        chunk_size=settings.LOYALTY_JOB_CHUNK_SIZE,
    )
    return chunks_send(ledger_reconcile_chunk.s(run_id=run.pk), ids)


@shared_task(name="ledger.ledger_reconcile_chunk", ignore_result=True)
def ledger_reconcile_chunk(
    account_ids: list[int], now: str | None = None, run_id: int | None = None
) -> int:
    """Check the chunk's accounts: add what it found to the run ``run_id`` and log every
    account whose stored totals disagree with its entries, lots, holds or pending points;
    returns how many."""
    found = reconciliation.reconciliation_chunk(account_ids=account_ids, run_id=run_id)
    for account, problems in found:
        logger.error(
            "ledger mismatch",
            extra={"account_id": account.pk, "member_id": account.member_id, "problems": problems},
        )
    if found:
        logger.error(
            "ledger reconciliation found mismatches",
            extra={"accounts": len(found), "chunk_first_account_id": min(account_ids)},
        )
    else:
        logger.info("ledger reconciled", extra={"accounts_checked": len(account_ids)})
    return len(found)
