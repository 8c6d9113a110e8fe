"""Ledger jobs: thin wrappers around the services, each safe to run twice or at the same time.

The services claim their rows under the account lock, so a second run (beat firing twice, a
redelivered message after a worker died: acks_late) finds nothing left to do. Retries are bounded
and only for database hiccups (the project's base task, loyalty_site.celery); a domain refusal is
not retried.
"""

import logging

from celery import shared_task

from ledger import selectors, services

logger = logging.getLogger(__name__)


@shared_task(name="ledger.points_expire", ignore_result=True)
def points_expire() -> int:
    return services.points_expire()


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
