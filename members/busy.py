"""A write the database gave up on so that another could go on is run again, a few times.

PostgreSQL ends one of two transactions that wait on each other (a deadlock, SQLSTATE 40P01) or
that it cannot serialise (40001); it rolls the victim back whole, so running the same write
again is safe and usually works. The lock order of ``ledger.services.posting`` keeps this rare:
this is the last line of defence, not the plan. The channel API, the admin's forms and actions
that post points (adjustments, approvals, every ``rows_run`` action) call ``busy_retry``; a
write that loses every time raises ``WriteBusy``, a domain error that the API answers as 503
``busy`` and a form or action shows as a translated "try again" message.

Celery tasks do not use it: their base task (``loyalty_site.celery.LoyaltyTask``) retries every
``OperationalError`` (deadlocks and serialization failures are ones) with a back-off of its own.

It lives in members, the lowest app, so that every app's admin and the API may import it.
"""

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import OperationalError, connection
from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import DomainError

logger = logging.getLogger(__name__)

# deadlock_detected, serialization_failure: the transaction was rolled back and may run again.
RETRY_SQLSTATES = frozenset({"40P01", "40001"})
WRITE_RETRIES = 3
# The n-th retry waits a random time up to RETRY_BASE_SECONDS * 2**n (0.05, 0.1, 0.2 s), so
# that the two losers of one deadlock do not meet again.
RETRY_BASE_SECONDS = 0.05

T = TypeVar("T")


class WriteBusy(DomainError):
    """The write lost to concurrent writes every time it was tried; nothing was written."""

    code = "busy"
    status = 503
    default_detail = _("Too many changes at once; nothing was written. Try again in a moment.")


def is_busy(exc: BaseException) -> bool:
    """A deadlock's victim or a serialization failure: Django wraps psycopg's DeadlockDetected
    or SerializationFailure in an OperationalError, whose cause carries the SQLSTATE."""
    return (
        isinstance(exc, OperationalError)
        and getattr(exc.__cause__, "sqlstate", None) in RETRY_SQLSTATES
    )


def busy_retry(write: Callable[[], T], *, retries: int | None = None) -> T:
    """``write()``, run again up to ``retries`` (WRITE_RETRIES) more times while the database
    rolls it back as a deadlock's victim; then ``WriteBusy``. Any other error goes through.

    ``write`` must be its own whole transaction (or a series of them): inside a caller's
    transaction that the failure has broken there is no savepoint of ours to return to, and a
    retry would only fail again, so that answers busy at once.
    """
    retries = WRITE_RETRIES if retries is None else retries
    for attempt in range(retries + 1):
        try:
            return write()
        except OperationalError as exc:
            if not is_busy(exc):
                raise
            if attempt == retries or (connection.in_atomic_block and connection.needs_rollback):
                logger.warning("write busy after %d attempts: %s", attempt + 1, exc.__cause__)
                raise WriteBusy() from exc
            logger.info("write retried after %s", exc.__cause__.sqlstate)
            time.sleep(random.uniform(0, RETRY_BASE_SECONDS * 2**attempt))
    raise AssertionError("unreachable")  # pragma: no cover
