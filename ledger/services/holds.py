"""Holds: points reserved for a redemption until it is posted, voided or times out."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ledger import errors
from ledger.finance.closing import dated_in_open_period
from ledger.models import Entry, Hold
from ledger.selectors import holds_timed_out
from ledger.services.posting import (
    SPENDING_REFUSED,
    _lock,
    _lock_member_account,
    _member_status,
    _points,
    _post,
    _reason_fields,
    _require_may_spend,
    _save_counters,
)
from members.models import Member


def hold_place(
    *,
    member: Member,
    points: int,
    reference: str = "",
    channel: str = "",
    expires_at: datetime | None = None,
    at: datetime | None = None,
) -> Hold:
    """Reserve points: they stay in the balance but are no longer available."""
    points = _points(points)
    # Held points count in the report of their date: not in a closed month (refused or now).
    at, _moved = dated_in_open_period(at or timezone.now())
    expires_at = expires_at or at + timedelta(minutes=settings.LOYALTY_HOLD_TIMEOUT_MINUTES)
    with transaction.atomic():
        account = _lock_member_account(member)
        _require_may_spend(account)
        if account.available < points:
            raise errors.InsufficientPoints()
        account.held += points
        account.updated_at = at
        _save_counters(account)
        return Hold.objects.create(
            account=account,
            points=points,
            channel=channel,
            reference=reference,
            created_at=at,
            expires_at=expires_at,
        )


def _resolve_hold(hold: Hold, status: str, at: datetime, entry: Entry | None = None) -> None:
    # Belt and braces next to the account lock: only an open hold may leave "open".
    claimed = Hold.objects.filter(pk=hold.pk, status=Hold.Status.OPEN).update(
        status=status, resolved_at=at, entry=entry
    )
    if claimed != 1:
        raise errors.HoldNotOpen()
    hold.status, hold.resolved_at, hold.entry = status, at, entry


def hold_post(
    *,
    hold: Hold,
    reason: str = "",
    reason_code: str = "",
    reason_params: dict | None = None,
    at: datetime | None = None,
) -> Entry:
    """Turn an open hold into a redemption entry. Exactly one of post/void/expiry wins."""
    at = at or timezone.now()
    with transaction.atomic():
        account = _lock(hold.account_id)
        current = Hold.objects.get(pk=hold.pk)
        if current.status != Hold.Status.OPEN:
            raise errors.HoldNotOpen()
        if _member_status(account) in SPENDING_REFUSED:
            raise errors.MemberBlocked()
        if account.balance < current.points:
            # A clawback after the hold was placed can leave too little to post.
            raise errors.InsufficientPoints()
        account.held -= current.points
        _save_counters(account)
        entry = _post(
            account,
            kind=Entry.Kind.REDEEM,
            amount=-current.points,
            at=at,
            channel=current.channel,
            reference=current.reference,
            **_reason_fields(reason, reason_code, reason_params),
        )
        # Held until the entry takes the points, which may be dated later than asked.
        at = entry.created_at
        _resolve_hold(current, Hold.Status.POSTED, at, entry)
    hold.status, hold.resolved_at, hold.entry = current.status, at, entry
    return entry


def _release_hold(hold: Hold, status: str, at: datetime) -> Hold:
    at, _moved = dated_in_open_period(at)  # See hold_place.
    account = _lock(hold.account_id)
    current = Hold.objects.get(pk=hold.pk)
    if current.status != Hold.Status.OPEN:
        raise errors.HoldNotOpen()
    _resolve_hold(current, status, at)
    account.held -= current.points
    account.updated_at = at
    _save_counters(account)
    return current


def hold_void(*, hold: Hold, at: datetime | None = None) -> Hold:
    at = at or timezone.now()
    with transaction.atomic():
        current = _release_hold(hold, Hold.Status.VOIDED, at)
    hold.status, hold.resolved_at = current.status, current.resolved_at
    return hold


def holds_expire(*, now: datetime | None = None, ids: list[int] | None = None) -> int:
    """Release open holds past their time-out. Safe to run twice at the same time.

    ``ids`` limits the run to those holds (a chunk of the job, listed by
    ``ledger.selectors.holds_timed_out``).
    """
    now = now or timezone.now()
    due = holds_timed_out(now=now)
    if ids is not None:
        due = due.filter(pk__in=ids)
    due = list(due.order_by("pk").values_list("pk", "account_id"))
    released = 0
    for pk, account_id in due:
        try:
            with transaction.atomic():
                _release_hold(Hold(pk=pk, account_id=account_id), Hold.Status.EXPIRED, now)
            released += 1
        except errors.HoldNotOpen:
            continue
    return released
