"""Reconciliation runs: every check of all accounts is stored (``ReconciliationRun``), whoever
started it (the nightly job, *Run now* on the finance page, ``manage.py ledger_reconcile``), so
the finance page shows the last run and its mismatches, not only a log line.

A run is checked in chunks of accounts (the nightly job sends one task per chunk,
``members.jobs``); each chunk adds its figures to the run row under that row's lock, so chunks
finishing at the same time add up, and a chunk delivered twice (a redelivered message) counts
once: the run keeps the first account id of every chunk that reported. The run is finished
when its last chunk has reported. The check itself only reads (``ledger.selectors``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from django.db import transaction
from django.utils import timezone

from ledger import selectors
from ledger.models import Account, ReconciliationRun


def chunked(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def reconciliation_start(
    *,
    trigger: str,
    chunk_size: int,
    account_ids: Sequence[int] | None = None,
    accounts: int | None = None,
    started_by=None,
) -> ReconciliationRun:
    """Record a run that will check ``account_ids`` (or that many ``accounts``, for a caller
    that walks them in ranges) in chunks of ``chunk_size``."""
    if accounts is None:
        accounts = len(account_ids)
    chunks = -(-accounts // chunk_size) if accounts else 0
    now = timezone.now()
    return ReconciliationRun.objects.create(
        trigger=trigger,
        started_by=started_by,
        started_at=now,
        accounts=accounts,
        chunks=chunks,
        finished_at=None if chunks else now,
    )


def reconciliation_chunk(
    *, account_ids: Sequence[int], run_id: int | None = None
) -> list[tuple[Account, list[str]]]:
    """Check the accounts of one chunk; add what it found to run ``run_id`` (when given) and
    return the accounts that do not reconcile, with their problems."""
    found = list(selectors.ledger_mismatches(account_ids=account_ids))
    if run_id is not None and account_ids:
        _chunk_record(run_id, key=min(account_ids), checked=len(account_ids), found=found)
    return found


def reconciliation_range(
    *, first: int, last: int, run_id: int
) -> tuple[list[tuple[Account, list[str]]], int]:
    """Check the accounts with ids from ``first`` to ``last``, a chunk of run ``run_id`` (the
    command's, which walks ranges instead of holding every id); returns the accounts that do
    not reconcile, with their problems, and how many accounts the range holds."""
    checked = Account.objects.filter(pk__range=(first, last)).count()
    found = list(selectors.mismatches_between(first=first, last=last))
    _chunk_record(run_id, key=first, checked=checked, found=found)
    return found, checked


def _chunk_record(run_id: int, *, key: int, checked: int, found) -> None:
    with transaction.atomic():
        # The row lock (not F() increments) because the sample of mismatches is read, merged and
        # written too; it serialises only the few chunks of one run as they finish.
        run = ReconciliationRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or key in run.chunks_done:
            return
        run.chunks_done = [*run.chunks_done, key]
        run.checked += checked
        run.mismatch_count += len(found)
        sample = run.mismatches + [
            {"account": account.pk, "member": str(account.member.public_id), "problems": problems}
            for account, problems in found
        ]
        run.mismatches = sorted(sample, key=lambda row: row["account"])[: ReconciliationRun.SAMPLE]
        if len(run.chunks_done) >= run.chunks:
            run.finished_at = timezone.now()
        run.save(
            update_fields=["chunks_done", "checked", "mismatch_count", "mismatches", "finished_at"]
        )


def reconciliation_last() -> ReconciliationRun | None:
    """The run started last, finished or not (what the finance page shows)."""
    return ReconciliationRun.objects.select_related("started_by").first()
