"""Every change to points: one function per business action, each one database transaction.

Locking rule: a service that changes an account's balance, held or pending points, its lots or
its holds first locks the account row (``SELECT ... FOR UPDATE``; on SQLite the IMMEDIATE
transaction takes the database write lock). So all changes to one account are serialised and a
check such as "available >= points" stays true until the entry is written. Two accounts (a
transfer) are locked in ascending id order, so two opposite transfers cannot deadlock. Nothing
slow (HTTP, e-mail, files) happens inside these functions.

Lots: every credit creates one lot; every debit takes points from the oldest lots first. When a
reverse takes the balance below zero the lots are empty and the negative balance is the debt; the
next credits pay the debt first, and only the rest lands in the lot's ``remaining``. So at any
moment ``sum(lot.remaining) == max(balance, 0)``, which ``ledger_reconcile`` checks.

Savepoints: a write that cannot refuse once it has begun (an earn, storing a purchase) opens its
transaction with ``savepoint=False``. Inside a caller's transaction (every purchase) it then adds
no SAVEPOINT/RELEASE pair, and what can still fail in it is the database, after which PostgreSQL
aborts the caller's transaction anyway. A write that may refuse under its lock (a redeem, a hold)
keeps its savepoint, so that a caller may catch the refusal and go on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger import errors
from ledger.expiry import expiry_for
from ledger.models import (
    Account,
    AdjustmentRequest,
    Entry,
    Hold,
    IdempotencyRecord,
    Lot,
    PendingEarn,
    Purchase,
    PurchaseLine,
    Return,
    ReturnLine,
)
from loyalty_site.errors import Conflict, DomainError
from members.models import Card, Member

logger = logging.getLogger(__name__)

SPENDING_REFUSED = {Member.Status.BLOCKED, Member.Status.ERASED}


# --- helpers -------------------------------------------------------------------------------


def _points(points) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise errors.InvalidPoints()
    return points


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise errors.ReasonRequired(fields={"reason": _("A reason is required.")})
    return reason


def account_for(member: Member) -> Account:
    """The member's points account, created on first use."""
    account = Account.objects.filter(member=member).first()
    if account is None:
        account, _created = Account.objects.get_or_create(member=member)
    return account


def _lock(account_id: int) -> Account:
    return Account.objects.select_for_update().get(pk=account_id)


def _lock_member_account(member: Member) -> Account:
    # One query in the usual case (the account exists); created on first use otherwise.
    try:
        return Account.objects.select_for_update().get(member=member)
    except Account.DoesNotExist:
        return _lock(account_for(member).pk)


def _member_status(account: Account) -> str:
    # Read fresh: the caller's Member instance may be older than a block by customer service.
    return Member.objects.filter(pk=account.member_id).values_list("status", flat=True).get()


def _require_may_spend(account: Account) -> None:
    if _member_status(account) in SPENDING_REFUSED:
        raise errors.MemberBlocked()
    if account.balance < 0:
        raise errors.AccountInDebt()


def _post(
    account: Account,
    *,
    kind: str,
    amount: int,
    at: datetime,
    expires_at: datetime | None = None,
    expires_explicit: bool = False,
    **fields,
) -> Entry:
    """Write one entry on a locked account, keep its lots in step and save the new balance."""
    before = account.balance
    account.balance = before + amount
    account.updated_at = at
    entry = Entry.objects.create(
        account=account,
        kind=kind,
        amount=amount,
        balance_after=account.balance,
        created_at=at,
        **fields,
    )
    if amount > 0:
        debt = max(0, -before)
        Lot.objects.create(
            account=account,
            entry=entry,
            points=amount,
            remaining=max(0, amount - debt),
            earned_at=at,
            expires_at=expires_at if expires_explicit else expiry_for(at),
        )
    else:
        _consume_lots(account, -amount)
    Account.objects.filter(pk=account.pk).update(
        balance=account.balance, updated_at=account.updated_at
    )
    return entry


def _consume_lots(account: Account, points: int) -> datetime | None:
    """Take points from the oldest lots; return the soonest expiry among the lots touched."""
    soonest = None
    if points <= 0:
        return soonest
    # The account row is locked, so no other transaction changes these lots meanwhile.
    for lot in Lot.objects.filter(account=account, remaining__gt=0).order_by("earned_at", "id"):
        take = min(lot.remaining, points)
        lot.remaining -= take
        lot.save(update_fields=["remaining"])
        if lot.expires_at and (soonest is None or lot.expires_at < soonest):
            soonest = lot.expires_at
        points -= take
        if points == 0:
            break
    return soonest


def _save_counters(account: Account) -> None:
    Account.objects.filter(pk=account.pk).update(
        held=account.held, pending=account.pending, updated_at=account.updated_at
    )


# --- earn, redeem, adjust, reverse, transfer -------------------------------------------------


def points_earn(
    *,
    member: Member,
    points: int,
    channel: str = "",
    reference: str = "",
    reason: str = "",
    actor=None,
    pending_until: datetime | None = None,
    expires_at: datetime | None = None,
    explanation: list | None = None,
    purchase: Purchase | None = None,
    at: datetime | None = None,
) -> Entry | PendingEarn:
    """Credit points. With ``pending_until`` in the future they wait as pending points instead.

    ``expires_at`` defaults to the expiry policy applied to ``at``.
    """
    points = _points(points)
    at = at or timezone.now()
    fields = {
        "channel": channel,
        "reference": reference,
        "reason": reason,
        "actor": actor,
        "explanation": explanation or [],
        "purchase": purchase,
    }
    with transaction.atomic(savepoint=False):  # See "Savepoints" in the module docstring.
        account = _lock_member_account(member)
        if pending_until is not None and pending_until > at:
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
        return _post(
            account,
            kind=Entry.Kind.EARN,
            amount=points,
            at=at,
            expires_at=expires_at,
            expires_explicit=expires_at is not None,
            **fields,
        )


def points_earn_batch(*, member: Member, earns: Iterable[dict]) -> list[Entry]:
    """Post many earns of one member at once, for history imports and demo data.

    The same rules as ``points_earn`` (lots, debt first, the expiry policy), under one lock with
    bulk inserts. ``earns``: dicts with ``points`` and ``at``, optionally ``channel``,
    ``reference``, ``reason``, ``explanation`` and ``expires_at``; posted in time order. No
    idempotency keys and no pending points: a channel request goes through ``points_earn``.
    """
    earns = sorted(earns, key=lambda item: item["at"])
    with transaction.atomic():
        account = _lock_member_account(member)
        balance = account.balance
        entries, lots = [], []
        for item in earns:
            points, at = _points(item["points"]), item["at"]
            debt = max(0, -balance)
            balance += points
            entries.append(
                Entry(
                    account=account,
                    kind=Entry.Kind.EARN,
                    amount=points,
                    balance_after=balance,
                    created_at=at,
                    channel=item.get("channel", ""),
                    reference=item.get("reference", ""),
                    reason=item.get("reason", ""),
                    explanation=item.get("explanation") or [],
                )
            )
            expires_at = item.get("expires_at")
            lots.append(
                Lot(
                    account=account,
                    points=points,
                    remaining=max(0, points - debt),
                    earned_at=at,
                    expires_at=expires_at if expires_at is not None else expiry_for(at),
                )
            )
        Entry.objects.bulk_create(entries)
        for entry, lot in zip(entries, lots, strict=True):
            lot.entry = entry
        Lot.objects.bulk_create(lots)
        if entries:
            Account.objects.filter(pk=account.pk).update(
                balance=balance, updated_at=max(account.updated_at, earns[-1]["at"])
            )
    return entries


def points_redeem(
    *,
    member: Member,
    points: int,
    channel: str = "",
    reference: str = "",
    reason: str = "",
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
            reason=reason,
            actor=actor,
        )


def _adjust_post(account: Account, *, points: int, reason: str, actor, at: datetime, **fields):
    if points < 0 and account.available < -points:
        raise errors.InsufficientPoints()
    return _post(
        account, kind=Entry.Kind.ADJUST, amount=points, at=at, reason=reason, actor=actor, **fields
    )


def points_adjust(
    *,
    member: Member,
    points: int,
    reason: str,
    actor,
    at: datetime | None = None,
    reference: str = "",
) -> Entry | AdjustmentRequest:
    """A staff credit (points > 0) or debit (points < 0) with a reason.

    Above ``LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD`` points (either sign) nothing is posted yet:
    an AdjustmentRequest waits for a second staff user. A debit never takes the balance below 0.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise errors.InvalidPoints(_("The adjustment must be a whole number other than zero."))
    reason = _reason(reason)
    if actor is None:
        raise DomainError(_("A staff adjustment needs a staff user."), code="actor_required")
    at = at or timezone.now()
    with transaction.atomic():
        account = _lock_member_account(member)
        if abs(points) > settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD:
            return AdjustmentRequest.objects.create(
                account=account,
                points=points,
                reason=reason,
                requested_by=actor,
                requested_at=at,
            )
        return _adjust_post(
            account, points=points, reason=reason, actor=actor, at=at, reference=reference
        )


def _decide(request: AdjustmentRequest, actor) -> AdjustmentRequest:
    locked = AdjustmentRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != AdjustmentRequest.Status.PENDING:
        raise errors.RequestNotPending()
    if actor is None or actor.pk == locked.requested_by_id:
        raise errors.SelfApproval()
    return locked


def adjustment_approve(*, request: AdjustmentRequest, actor, at: datetime | None = None) -> Entry:
    """Post a waiting adjustment; the approver must be another staff user than the requester."""
    at = at or timezone.now()
    with transaction.atomic():
        account = _lock(request.account_id)
        locked = _decide(request, actor)
        entry = _adjust_post(
            account,
            points=locked.points,
            reason=locked.reason,
            actor=locked.requested_by,
            at=at,
            reference=f"adjustment-request:{locked.pk}",
        )
        locked.status = AdjustmentRequest.Status.APPROVED
        locked.decided_by = actor
        locked.decided_at = at
        locked.entry = entry
        locked.save(update_fields=["status", "decided_by", "decided_at", "entry"])
    request.refresh_from_db()
    return entry


def adjustment_reject(
    *, request: AdjustmentRequest, actor, reason: str = "", at: datetime | None = None
) -> AdjustmentRequest:
    at = at or timezone.now()
    with transaction.atomic():
        locked = _decide(request, actor)
        locked.status = AdjustmentRequest.Status.REJECTED
        locked.decided_by = actor
        locked.decided_at = at
        locked.decision_reason = (reason or "").strip()[:255]
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    request.refresh_from_db()
    return locked


def points_reverse(
    *,
    entry: Entry,
    points: int | None = None,
    reason: str,
    channel: str = "",
    actor=None,
    reference: str = "",
    at: datetime | None = None,
) -> Entry:
    """Undo (part of) an earlier entry with a new one that refers to it.

    ``points`` is the size to reverse (default: all that is not reversed yet). Reversing an earn
    (a return's clawback) may take the balance below zero: that is the debt.
    """
    reason = _reason(reason)
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
            reason=reason,
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
        )
        return out, into


# --- holds ---------------------------------------------------------------------------------


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
    at = at or timezone.now()
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


def hold_post(*, hold: Hold, reason: str = "", at: datetime | None = None) -> Entry:
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
            reason=reason,
        )
        _resolve_hold(current, Hold.Status.POSTED, at, entry)
    hold.status, hold.resolved_at, hold.entry = current.status, at, entry
    return entry


def _release_hold(hold: Hold, status: str, at: datetime) -> Hold:
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


def holds_expire(*, now: datetime | None = None) -> int:
    """Release open holds past their time-out. Safe to run twice at the same time."""
    now = now or timezone.now()
    due = list(
        Hold.objects.filter(status=Hold.Status.OPEN, expires_at__lte=now).values_list(
            "pk", "account_id"
        )
    )
    released = 0
    for pk, account_id in due:
        try:
            with transaction.atomic():
                _release_hold(Hold(pk=pk, account_id=account_id), Hold.Status.EXPIRED, now)
            released += 1
        except errors.HoldNotOpen:
            continue
    return released


# --- expiry and maturation -----------------------------------------------------------------


def points_expire(*, now: datetime | None = None, member: Member | None = None) -> int:
    """Expire what is left of lots past their expiry date; returns the points expired.

    One account at a time, each in its own short transaction under the account lock, so two
    runs at once expire each lot once: the second finds ``remaining == 0``. Points reserved by an
    open hold are not expired while the hold is open (the reservation was promised); the lot
    keeps them and the next run expires them if the hold is voided.
    """
    now = now or timezone.now()
    due = Lot.objects.filter(remaining__gt=0, expires_at__lte=now)
    if member is not None:
        due = due.filter(account__member=member)
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
        entry = Entry.objects.create(
            account=account,
            kind=Entry.Kind.EXPIRE,
            amount=-take,
            balance_after=account.balance,
            # The run's time, not the lot's expiry date: entries stay in time order, so each
            # "balance after" follows from the one before it.
            created_at=now,
            reference=f"lot:{lot.pk}",
            reason="expiry",
            refers_to_id=lot.entry_id,
        )
        lot.remaining -= take
        lot.expired_at = entry.created_at if lot.remaining == 0 else None
        lot.save(update_fields=["remaining", "expired_at"])
        expirable -= take
        total += take
    if total:
        Account.objects.filter(pk=account.pk).update(balance=account.balance, updated_at=now)
    return total


def points_mature(*, now: datetime | None = None) -> int:
    """Make pending points spendable once their date has come; returns how many matured."""
    now = now or timezone.now()
    due = list(
        PendingEarn.objects.filter(
            status=PendingEarn.Status.PENDING, matures_at__lte=now
        ).values_list("pk", "account_id")
    )
    matured = 0
    for pk, account_id in due:
        with transaction.atomic():
            account = _lock(account_id)
            pending = PendingEarn.objects.get(pk=pk)
            if pending.status != PendingEarn.Status.PENDING:
                continue  # Another run took it while we waited for the lock.
            at = pending.matures_at
            account.pending -= pending.points
            _save_counters(account)
            entry = _post(
                account,
                kind=Entry.Kind.EARN,
                amount=pending.points,
                at=at,
                expires_at=pending.expires_at,
                expires_explicit=pending.expires_at is not None,
                channel=pending.channel,
                reference=pending.reference,
                reason=pending.reason,
                actor=pending.actor,
                explanation=pending.explanation,
                purchase=pending.purchase,
            )
            claimed = PendingEarn.objects.filter(pk=pk, status=PendingEarn.Status.PENDING).update(
                status=PendingEarn.Status.MATURED, entry=entry, resolved_at=now
            )
            if claimed != 1:
                raise Conflict(_("Pending points were resolved twice."))
            matured += 1
    return matured


def pending_cancel(
    *, pending: PendingEarn, points: int | None = None, at: datetime | None = None
) -> PendingEarn:
    """Take back (part of) pending points, e.g. for a return inside the return window."""
    at = at or timezone.now()
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
    return current


# --- purchases and returns -----------------------------------------------------------------


def purchase_store_first(
    *,
    member: Member,
    channel: str,
    external_id: str,
    amount: Decimal,
    currency: str,
    occurred_at: datetime,
    store: str = "",
    lines: Iterable[dict] = (),
    card: Card | None = None,
) -> tuple[Purchase, bool]:
    """Store a purchase record and its lines; return it and whether it is the member's first.

    The same (channel, external id) is refused. The caller holds the member's row lock
    (``campaigns.services.purchase_record`` does), so no other purchase of the member commits
    meanwhile: "first" stays true until the caller's transaction ends.
    """
    currency = (currency or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise DomainError(_("Currency must be a three-letter code."), code="invalid_currency")
    # A repeat is found by looking before the insert, in the look for an earlier purchase (one
    # query), not by catching the unique constraint's violation: after a failed INSERT,
    # PostgreSQL runs no further query in the transaction, so telling that violation apart from
    # another would cost a savepoint (two statements on every purchase) or the constraint's
    # name (PostgreSQL only). The member lock serialises this member's purchases only: another
    # member's purchase with the same (channel, external id) committing in between still meets
    # the unique constraint, and that request fails whole (its retry gets DuplicatePurchase).
    repeat, earlier = (
        Member.objects.filter(pk=member.pk)
        .values_list(
            Exists(Purchase.objects.filter(channel=channel, external_id=external_id)),
            Exists(Purchase.objects.filter(member=member)),
        )
        .get()
    )
    if repeat:
        raise errors.DuplicatePurchase()
    with transaction.atomic(savepoint=False):  # See "Savepoints" in the module docstring.
        purchase = Purchase.objects.create(
            member=member,
            card=card,
            channel=channel,
            external_id=external_id,
            amount=Decimal(amount),
            currency=currency,
            occurred_at=occurred_at,
            store=store,
            status=Purchase.Status.RECORDED,
        )
        PurchaseLine.objects.bulk_create(
            PurchaseLine(
                purchase=purchase,
                sku=line.get("sku", ""),
                category=line.get("category", ""),
                quantity=int(line.get("quantity", 1)),
                amount=Decimal(line["amount"]),
            )
            for line in lines
        )
    return purchase, not earlier


def return_store(
    *,
    purchase: Purchase,
    lines: Iterable[dict] | None = None,
    amount: Decimal | None = None,
    external_id: str = "",
) -> Return:
    """Record a return of (part of) a purchase.

    ``lines``: dicts with ``line`` (a PurchaseLine or its id), ``quantity`` and optionally
    ``amount`` (default: the line's amount in proportion). Without lines, ``amount`` (default:
    all that is not returned yet). Never more than what is left of the purchase.
    """
    with transaction.atomic():
        locked = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if external_id and Return.objects.filter(purchase=locked, external_id=external_id).exists():
            raise Conflict(_("This return was recorded already."), code="duplicate_return")
        returned = locked.returns.aggregate(total=Sum("amount"))["total"] or Decimal("0")
        left = locked.amount - returned
        rows = []
        if lines is not None:
            by_id = {line.pk: line for line in locked.lines.all()}
            total = Decimal("0")
            for item in lines:
                line_ref = item["line"]
                line = by_id.get(getattr(line_ref, "pk", line_ref))
                if line is None:
                    raise DomainError(_("Unknown purchase line."), code="unknown_line")
                quantity = int(item.get("quantity", line.quantity))
                done = line.return_lines.aggregate(total=Sum("quantity"))["total"] or 0
                if quantity <= 0 or quantity + done > line.quantity:
                    raise errors.ReturnExceedsPurchase()
                line_amount = item.get("amount")
                if line_amount is None:
                    line_amount = (line.amount * quantity / line.quantity).quantize(Decimal("0.01"))
                rows.append((line, quantity, Decimal(line_amount)))
                total += Decimal(line_amount)
            amount = total
        elif amount is None:
            amount = left
        amount = Decimal(amount)
        if amount < 0 or amount > left:
            raise errors.ReturnExceedsPurchase()
        record = Return.objects.create(purchase=locked, external_id=external_id, amount=amount)
        ReturnLine.objects.bulk_create(
            ReturnLine(return_record=record, line=line, quantity=quantity, amount=line_amount)
            for line, quantity, line_amount in rows
        )
    return record


# --- idempotency records -------------------------------------------------------------------


def idempotency_claim(*, channel: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Claim an Idempotency-Key for a channel request, or get the first answer to replay.

    Call it inside the same ``transaction.atomic()`` as the write it protects and call
    ``idempotency_store`` before that transaction commits. Returns:
    - ``None``: this request now owns the key; go on, then store the response.
    - an ``IdempotencyRecord`` with ``response_status``/``response_body``: replay it.
    Raises ``IdempotencyConflict`` when the key was used with another fingerprint, and
    ``IdempotencyInProgress`` when the first request has claimed but not stored (only possible
    when the caller claimed outside a transaction).

    One statement when the key is new (INSERT ... ON CONFLICT DO NOTHING, no savepoint). A
    concurrent retry with the same key waits on the unique index until the first transaction
    ends: then it either sees the stored answer or, if the first rolled back, owns the key.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IdempotencyRecord._meta.db_table} (channel, key, fingerprint, "
            "created_at) VALUES (%s, %s, %s, %s) ON CONFLICT (channel, key) DO NOTHING "
            "RETURNING id",
            [channel, key, fingerprint, timezone.now()],
        )
        if cursor.fetchone() is not None:
            return None
    record = IdempotencyRecord.objects.filter(channel=channel, key=key).first()
    if record is None:  # The other claimer's record was purged between our insert and read.
        return idempotency_claim(channel=channel, key=key, fingerprint=fingerprint)
    if record.fingerprint != fingerprint:
        raise errors.IdempotencyConflict()
    if record.response_status is None:
        raise errors.IdempotencyInProgress()
    return record


def idempotency_store(
    *, channel: str, key: str, response_status: int, response_body, fingerprint: str = ""
) -> None:
    """Store the answer to a claimed key, to be replayed to retries.

    The claim's row is this transaction's own (or, claimed outside one, this request's), so a
    plain UPDATE does. With ``fingerprint``, a key whose claim was rolled back (a refused write)
    is recorded afresh, unless another request has claimed it meanwhile: its answer then stands.
    """
    stored = IdempotencyRecord.objects.filter(
        channel=channel, key=key, response_status__isnull=True
    ).update(response_status=response_status, response_body=response_body)
    if not stored and fingerprint:
        IdempotencyRecord.objects.bulk_create(
            [
                IdempotencyRecord(
                    channel=channel,
                    key=key,
                    fingerprint=fingerprint,
                    response_status=response_status,
                    response_body=response_body,
                )
            ],
            ignore_conflicts=True,
        )


# Fields of a stored channel answer that carry personal data (the member resources of the API).
IDEMPOTENCY_PERSONAL_FIELDS = ("email", "first_name", "last_name", "phone", "birth_date")


@transaction.atomic
def idempotency_scrub(*, member: Member) -> int:
    """Blank the personal fields in stored answers about this member (erasure, invariant 8).

    The records stay, so a retried request still replays instead of writing again; only the
    copies of the member's personal data in their bodies go.
    """
    scrubbed = 0
    records = IdempotencyRecord.objects.select_for_update().filter(
        response_body__id=str(member.public_id)
    )
    for record in records:
        body = dict(record.response_body)
        for field in IDEMPOTENCY_PERSONAL_FIELDS:
            if body.get(field):
                body[field] = ""
        IdempotencyRecord.objects.filter(pk=record.pk).update(response_body=body)
        scrubbed += 1
    return scrubbed


def idempotency_purge(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.LOYALTY_IDEMPOTENCY_TTL_HOURS)
    deleted, _by_model = IdempotencyRecord.objects.filter(created_at__lt=cutoff).delete()
    return deleted
