"""Earning, spending, reversing and moving points: the entries a balance is the sum of."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger import errors
from ledger.expiry import expiry_for
from ledger.finance.closing import dated_in_open_period
from ledger.models import Account, Entry, Lot, LotConsumption, PendingEarn, Purchase
from ledger.services.posting import (
    _lock,
    _lock_member_account,
    _member_status,
    _newest_entry_at,
    _points,
    _post,
    _reason,
    _reason_fields,
    _require_may_spend,
    _save_counters,
    account_for,
)
from loyalty_site.errors import DomainError
from members.events import Event, events_emit
from members.models import Member


def points_earn(
    *,
    member: Member,
    points: int,
    channel: str = "",
    reference: str = "",
    reason: str = "",
    reason_code: str = "",
    reason_params: dict | None = None,
    actor=None,
    pending_until: datetime | None = None,
    expires_at: datetime | None = None,
    explanation: list | None = None,
    purchase: Purchase | None = None,
    at: datetime | None = None,
) -> Entry | PendingEarn:
    """Credit points. With ``pending_until`` in the future they wait as pending points instead.

    ``expires_at`` defaults to the expiry policy applied to ``at``. A reason the system gives
    is ``reason_code`` with ``reason_params`` (``ledger.reasons``); ``reason`` is staff's text.
    """
    points = _points(points)
    at = at or timezone.now()
    fields = {
        "channel": channel,
        "reference": reference,
        **_reason_fields(reason, reason_code, reason_params),
        "actor": actor,
        "explanation": explanation or [],
        "purchase": purchase,
    }
    with transaction.atomic(savepoint=False):  # See "Savepoints" in posting.py.
        account = _lock_member_account(member)
        if pending_until is not None and pending_until > at:
            # Pending points count in the report of their date: not in a closed month (refused
            # or dated now with a note, which the matured entry keeps).
            requested = at
            at, note = dated_in_open_period(at)
            if note:
                fields["explanation"] = [
                    *fields["explanation"],
                    {**note, "dated": requested.isoformat()},
                ]
            account.pending += points
            account.updated_at = at
            _save_counters(account)
            return PendingEarn.objects.create(
                account=account,
                points=points,
                matures_at=pending_until,
                expires_at=expires_at,
                created_at=at,
                **fields,
            )
        entry = _post(
            account,
            kind=Entry.Kind.EARN,
            amount=points,
            at=at,
            expires_at=expires_at,
            expires_explicit=expires_at is not None,
            **fields,
        )
        earned_announce(entries=[entry], member_public_id=member.public_id)
        return entry


def earned_announce(*, entries: list[Entry], member_public_id) -> None:
    """The ``points.earned`` event of each posted earn entry, whoever earned it: a purchase, an
    engagement event, a challenge, a referral, matured pending points, an import."""
    events_emit(
        events=[
            Event(
                type="points.earned",
                data={
                    "member": member_public_id,
                    "points": entry.amount,
                    "balance": entry.balance_after,
                    "entry": entry.pk,
                    "reference": entry.reference,
                    "purchase": entry.purchase_id,
                    "external_id": entry.purchase.external_id if entry.purchase_id else None,
                },
                channel=entry.channel,
            )
            for entry in entries
        ]
    )


def points_earn_batch(*, member: Member, earns: Iterable[dict]) -> list[Entry]:
    """Post many earns of one member at once, for history imports and demo data.

    The same rules as ``points_earn`` (lots, debt first, the expiry policy), under one lock with
    bulk inserts. ``earns``: dicts with ``points`` and ``at``, optionally ``channel``,
    ``reference``, ``reason`` (or ``reason_code`` and ``reason_params``), ``explanation`` and
    ``expires_at``; posted in time order. No
    pending points: a channel request goes through ``points_earn``.
    """
    earns = sorted(earns, key=lambda item: item["at"])
    with transaction.atomic():
        account = _lock_member_account(member)
        balance, debt_moved_at = account.balance, account.debt_moved_at
        # The dating rules of _post ("Dates" in posting.py) over the batch: after the last
        # movement of a debt, and while in debt after every entry so far. Credits only raise
        # the balance, so a debt can only be there from the start.
        newest = _newest_entry_at(account) if balance < 0 else None
        entries, lots = [], []
        for item in earns:
            points, requested = _points(item["points"]), item["at"]
            floors = [debt_moved_at, newest if balance < 0 else None]
            at = max([requested, *(floor for floor in floors if floor is not None)])
            at, note = dated_in_open_period(at)
            if note:
                note = {**note, "dated": requested.isoformat()}
            elif at != requested:
                note = {"note": "dated_after_debt", "dated": requested.isoformat()}
            if note:
                item = {**item, "explanation": [*(item.get("explanation") or []), note]}
            debt = max(0, -balance)
            balance += points
            if debt:
                debt_moved_at = at
            newest = max(newest, at) if newest is not None else None
            entries.append(
                Entry(
                    account=account,
                    kind=Entry.Kind.EARN,
                    amount=points,
                    balance_after=balance,
                    created_at=at,
                    channel=item.get("channel", ""),
                    reference=item.get("reference", ""),
                    **_reason_fields(
                        item.get("reason", ""),
                        item.get("reason_code", ""),
                        item.get("reason_params"),
                    ),
                    explanation=item.get("explanation") or [],
                )
            )
            expires_at = item.get("expires_at")
            earned = at if note.get("note") == "closed_period" else requested
            lots.append(
                Lot(
                    account=account,
                    points=points,
                    remaining=max(0, points - debt),
                    earned_at=at,
                    expires_at=expires_at if expires_at is not None else expiry_for(earned),
                )
            )
        Entry.objects.bulk_create(entries)
        for entry, lot in zip(entries, lots, strict=True):
            lot.entry = entry
        Lot.objects.bulk_create(lots)
        # An earn that paid a debt: the debt's part of its lot, as _post records it.
        LotConsumption.objects.bulk_create(
            LotConsumption(
                entry=lot.entry, lot=lot, points=lot.points - lot.remaining, at=lot.earned_at
            )
            for lot in lots
            if lot.remaining < lot.points
        )
        if entries:
            Account.objects.filter(pk=account.pk).update(
                balance=balance,
                updated_at=max(account.updated_at, entries[-1].created_at),
                debt_moved_at=debt_moved_at,
            )
        earned_announce(entries=entries, member_public_id=member.public_id)
    return entries


def points_redeem(
    *,
    member: Member,
    points: int,
    channel: str = "",
    reference: str = "",
    reason: str = "",
    reason_code: str = "",
    reason_params: dict | None = None,
    actor=None,
    at: datetime | None = None,
) -> Entry:
    """Spend points. Refused for a blocked or erased member, an account in debt, or when short."""
    points = _points(points)
    at = at or timezone.now()
    with transaction.atomic():
        account = _lock_member_account(member)
        _require_may_spend(account)
        if account.available < points:
            raise errors.InsufficientPoints(
                fields={"points": _("Available: %(n)s points.") % {"n": account.available}}
            )
        return _post(
            account,
            kind=Entry.Kind.REDEEM,
            amount=-points,
            at=at,
            channel=channel,
            reference=reference,
            **_reason_fields(reason, reason_code, reason_params),
            actor=actor,
        )


def points_reverse(
    *,
    entry: Entry,
    points: int | None = None,
    reason: str = "",
    reason_code: str = "",
    reason_params: dict | None = None,
    channel: str = "",
    actor=None,
    reference: str = "",
    at: datetime | None = None,
) -> Entry:
    """Undo (part of) an earlier entry with a new one that refers to it.

    ``points`` is the size to reverse (default: all that is not reversed yet). Reversing an earn
    (a return's clawback) may take the balance below zero: that is the debt. It needs a reason:
    staff's ``reason``, or the system's ``reason_code``.
    """
    reasons = _reason_fields(reason, reason_code, reason_params)
    if not reason_code:
        reasons["reason"] = _reason(reason)
    if entry.kind == Entry.Kind.REVERSE:
        raise DomainError(_("A reversal cannot itself be reversed."), code="not_reversible")
    if points is not None:
        points = _points(points)
    at = at or timezone.now()
    sign = -1 if entry.amount > 0 else 1
    with transaction.atomic():
        account = _lock(entry.account_id)
        # Read under the lock: a concurrent reverse of the same entry has committed or waits.
        done = (
            Entry.objects.filter(refers_to=entry, kind=Entry.Kind.REVERSE).aggregate(
                total=Sum("amount")
            )["total"]
            or 0
        )
        left = abs(entry.amount) - abs(done)
        size = left if points is None else points
        if size <= 0 or size > left:
            raise DomainError(
                _("Only %(n)s points of this entry are left to reverse.") % {"n": left},
                code="reverse_exceeds_entry",
            )
        return _post(
            account,
            kind=Entry.Kind.REVERSE,
            amount=sign * size,
            at=at,
            channel=channel,
            actor=actor,
            **reasons,
            reference=reference or entry.reference,
            refers_to=entry,
            purchase=entry.purchase,
        )


def points_transfer(
    *,
    source: Member,
    target: Member,
    points: int,
    reason: str,
    actor=None,
    channel: str = "",
    at: datetime | None = None,
) -> tuple[Entry, Entry]:
    """Move points between members. The moved points keep the soonest expiry they came from."""
    points = _points(points)
    reason = _reason(reason)
    if source.pk == target.pk:
        raise DomainError(_("Source and target are the same member."), code="same_member")
    at = at or timezone.now()
    source_id, target_id = account_for(source).pk, account_for(target).pk
    with transaction.atomic():
        # Fixed order (ascending id) so that A->B and B->A at the same time cannot deadlock.
        locked = {pk: _lock(pk) for pk in sorted((source_id, target_id))}
        src, dst = locked[source_id], locked[target_id]
        _require_may_spend(src)
        if _member_status(dst) == Member.Status.ERASED:
            raise errors.MemberBlocked(_("Points cannot be moved to an erased member."))
        if src.available < points:
            raise errors.InsufficientPoints()
        # Which lots the debit will take decides the credit's expiry; read it before posting.
        soonest = (
            Lot.objects.filter(account=src, remaining__gt=0)
            .order_by("earned_at", "id")
            .values_list("expires_at", "remaining")
        )
        expires, need = None, points
        for lot_expiry, remaining in soonest:
            if lot_expiry is not None and (expires is None or lot_expiry < expires):
                expires = lot_expiry
            need -= remaining
            if need <= 0:
                break
        out = _post(
            src,
            kind=Entry.Kind.TRANSFER,
            amount=-points,
            at=at,
            channel=channel,
            actor=actor,
            reason=reason,
            reference=f"transfer-to:{target.pk}",
        )
        into = _post(
            dst,
            kind=Entry.Kind.TRANSFER,
            amount=points,
            at=at,
            channel=channel,
            actor=actor,
            reason=reason,
            reference=f"transfer-from:{source.pk}",
            refers_to=out,
            expires_at=expires,
            expires_explicit=True,
            # Both halves on one date: the debit's, which may be later than asked (posting.py).
            not_before=out.created_at,
        )
        return out, into
