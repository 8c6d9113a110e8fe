"""What time does to points: lots expire, pending points mature or are cancelled."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger import errors
from ledger.expiry import expiry_for
from ledger.finance.closing import dated_in_open_period
from ledger.models import Account, Entry, Lot, LotConsumption, PendingCancellation, PendingEarn
from ledger.selectors import pending_maturing
from ledger.services.points import earned_announce
from ledger.services.posting import _lock, _points, _post, _save_counters
from loyalty_site.errors import Conflict
from members.models import Member


def points_expire(
    *,
    now: datetime | None = None,
    member: Member | None = None,
    account_ids: list[int] | None = None,
) -> int:
    """Expire what is left of lots past their expiry date; returns the points expired.

    ``account_ids`` limits the run to those accounts: the nightly job hands out chunks of them
    (``ledger.selectors.accounts_expiring`` lists the due ones), each its own short task.

    One account at a time, each in its own short transaction under the account lock, so two
    runs at once expire each lot once: the second finds ``remaining == 0``. Points reserved by an
    open hold are not expired while the hold is open (the reservation was promised); the lot
    keeps them and the next run expires them if the hold is voided.
    """
    now = now or timezone.now()
    due = Lot.objects.filter(remaining__gt=0, expires_at__lte=now)
    if member is not None:
        due = due.filter(account__member=member)
    if account_ids is not None:
        due = due.filter(account_id__in=account_ids)
    account_ids = due.values_list("account_id", flat=True).distinct().order_by("account_id")
    expired = 0
    for account_id in list(account_ids):
        with transaction.atomic():
            expired += _expire_account(_lock(account_id), now)
    return expired


def _expire_account(account: Account, now: datetime) -> int:
    expirable = account.available
    total = 0
    lots = Lot.objects.filter(account=account, remaining__gt=0, expires_at__lte=now).order_by(
        "earned_at", "id"
    )
    for lot in lots:
        take = min(lot.remaining, expirable)
        if take <= 0:
            break
        account.balance -= take
        # The run's time, not the lot's expiry date: entries stay in time order, so each
        # "balance after" follows from the one before it. Never before the lot was earned (a
        # run dated in the past, a transferred lot that keeps an earlier expiry): see "Dates" in
        # posting.py. And never in a closed month: refused, or dated now with a note.
        at, note = dated_in_open_period(max(now, lot.earned_at))
        entry = Entry.objects.create(
            account=account,
            kind=Entry.Kind.EXPIRE,
            amount=-take,
            balance_after=account.balance,
            created_at=at,
            explanation=[{**note, "dated": now.isoformat()}] if note else [],
            reference=f"lot:{lot.pk}",
            reason_code="points_expired",
            refers_to_id=lot.entry_id,
        )
        lot.remaining -= take
        lot.expired_at = entry.created_at if lot.remaining == 0 else None
        lot.save(update_fields=["remaining", "expired_at"])
        # In the expiry's transaction, like every debit's (see posting.py, "Lots").
        LotConsumption.objects.create(entry=entry, lot=lot, points=take, at=entry.created_at)
        expirable -= take
        total += take
    if total:
        Account.objects.filter(pk=account.pk).update(balance=account.balance, updated_at=now)
    return total


def points_mature(*, now: datetime | None = None, ids: list[int] | None = None) -> int:
    """Make pending points spendable once their date has come; returns how many matured.

    ``ids`` limits the run to those pending points (a chunk of the job, listed by
    ``ledger.selectors.pending_maturing``); one short transaction each, under the account lock.
    """
    now = now or timezone.now()
    due = pending_maturing(now=now)
    if ids is not None:
        due = due.filter(pk__in=ids)
    due = list(due.order_by("pk").values_list("pk", "account_id"))
    matured = 0
    for pk, account_id in due:
        with transaction.atomic():
            account = _lock(account_id)
            pending = PendingEarn.objects.get(pk=pk)
            if pending.status != PendingEarn.Status.PENDING:
                continue  # Another run took it while we waited for the lock.
            # Dated at the run's moment, not at matures_at (up to 15 minutes earlier): like an
            # expiry, entries stay in time order, and a liability reported for a moment already
            # past does not change afterwards. The lot still expires as from matures_at.
            at = now
            account.pending -= pending.points
            _save_counters(account)
            entry = _post(
                account,
                kind=Entry.Kind.EARN,
                amount=pending.points,
                at=at,
                expires_at=pending.expires_at or expiry_for(pending.matures_at),
                expires_explicit=True,
                channel=pending.channel,
                reference=pending.reference,
                reason=pending.reason,
                reason_code=pending.reason_code,
                reason_params=pending.reason_params,
                actor=pending.actor,
                explanation=pending.explanation,
                purchase=pending.purchase,
            )
            # Resolved when its entry is dated (later than ``now`` if moved out of a closed
            # period): pending and posted never overlap in a report of any moment.
            claimed = PendingEarn.objects.filter(pk=pk, status=PendingEarn.Status.PENDING).update(
                status=PendingEarn.Status.MATURED, entry=entry, resolved_at=entry.created_at
            )
            if claimed != 1:
                raise Conflict(_("Pending points were resolved twice."))
            earned_announce(
                entries=[entry],
                member_public_id=Member.objects.values_list("public_id", flat=True).get(
                    pk=account.member_id
                ),
            )
            matured += 1
    return matured


def pending_cancel(
    *, pending: PendingEarn, points: int | None = None, at: datetime | None = None
) -> PendingEarn:
    """Take back (part of) pending points, e.g. for a return inside the return window.

    Not dated in a closed month (the pending points of its report would change): refused, or
    dated now, by ``LOYALTY_FINANCE_CLOSED_PERIOD``."""
    at, _moved = dated_in_open_period(at or timezone.now())
    with transaction.atomic():
        account = _lock(pending.account_id)
        current = PendingEarn.objects.get(pk=pending.pk)
        if current.status != PendingEarn.Status.PENDING:
            raise Conflict(_("These points are no longer pending."), code="pending_not_open")
        size = current.points if points is None else _points(points)
        if size > current.points:
            raise errors.InvalidPoints(_("More points than are pending."))
        account.pending -= size
        account.updated_at = at
        _save_counters(account)
        if size == current.points:
            current.status = PendingEarn.Status.CANCELLED
            current.resolved_at = at
        else:
            current.points -= size
        current.save(update_fields=["status", "resolved_at", "points"])
        # In the same transaction: the row above only says what is pending now; finance's
        # pending figure of a past date adds back what was cancelled after it.
        PendingCancellation.objects.create(pending=current, points=size, at=at)
    return current
