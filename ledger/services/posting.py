"""Posting on an account, which every ledger service does: one business action, one transaction.

Locking rule: a service that changes an account's balance, held or pending points, its lots or
its holds first locks the account row (``SELECT ... FOR NO KEY UPDATE``; on SQLite the IMMEDIATE
transaction takes the database write lock). So all changes to one account are serialised and a
check such as "available >= points" stays true until the entry is written. Two accounts (a
transfer) are locked in ascending id order, so two opposite transfers cannot deadlock. Nothing
slow (HTTP, e-mail, files) happens inside these functions.

Lock order of every write that touches points, whoever calls it (issue 12):

1. the member row, when the use case locks it (purchases, returns, engagement events:
   ``campaigns.services.locks.member_lock``); then budgeted earning rules by id;
2. the redemption row, when one is changed (``rewards.services.redemptions``);
3. the account row (here), two of them in ascending id order;
4. rows only this account's lock guards (lots, holds, pending points), then the reward row's
   stock and voucher codes (``skip_locked``).

No write locks a member row after its account. The member and account rows are both locked
``FOR NO KEY UPDATE`` rather than ``FOR UPDATE``: every row written with a foreign key to them
(an entry, a hold, a redemption) has its deferred check take ``FOR KEY SHARE`` on the referenced
row at commit, and ``FOR UPDATE`` makes that wait. That is how a purchase (member, then account)
deadlocked with a redemption (account, then at commit the member's key share). ``FOR NO KEY
UPDATE`` still conflicts with itself, so writers stay serialised; no service changes an id or
another referenced key of these rows. What still fails with a deadlock or a serialization failure
(another app's lock, the database's own choices) is retried by the API's write
(``loyalty_site.api.idempotency``).

Lots: every credit creates one lot; every debit takes points from the oldest lots first. When a
reverse takes the balance below zero the lots are empty and the negative balance is the debt; the
next credits pay the debt first, and only the rest lands in the lot's ``remaining``. So at any
moment ``sum(lot.remaining) == max(balance, 0)``, which ``ledger_reconcile`` checks. Every debit
records which lots it took points from (``LotConsumption``, one row per lot, in the debit's
transaction), and an earn that pays a debt records the part the debt took of its own lot: with
them finance reconstructs what each lot held at any past moment (``ledger.finance``).

Savepoints: a write that cannot refuse once it has begun (an earn, storing a purchase) opens its
transaction with ``savepoint=False``. Inside a caller's transaction (every purchase) it then adds
no SAVEPOINT/RELEASE pair, and what can still fail in it is the database, after which PostgreSQL
aborts the caller's transaction anyway. A write that may refuse under its lock (a redeem, a hold)
keeps its savepoint, so that a caller may catch the refusal and go on.

The underscored helpers here are this package's own: the other modules of ``ledger.services``
lock and post through them; nothing outside the package calls them.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from ledger import errors
from ledger.expiry import expiry_for
from ledger.finance.closing import dated_in_open_period
from ledger.models import Account, Entry, Lot, LotConsumption
from ledger.reasons import reason_check
from members.models import Member

SPENDING_REFUSED = {Member.Status.BLOCKED, Member.Status.ERASED}


def _points(points) -> int:
    if isinstance(points, bool) or not isinstance(points, int) or points <= 0:
        raise errors.InvalidPoints()
    return points


def _reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise errors.ReasonRequired(fields={"reason": _("A reason is required.")})
    return reason


def _reason_fields(reason: str, code: str, params: dict | None) -> dict:
    """The entry's reason columns: what staff typed, and the system's code with its params."""
    return {
        "reason": (reason or "").strip(),
        "reason_code": code,
        "reason_params": reason_check(code, params),
    }


def account_for(member: Member) -> Account:
    """The member's points account, created on first use."""
    account = Account.objects.filter(member=member).first()
    if account is None:
        account, _created = Account.objects.get_or_create(member=member)
    return account


def _lock(account_id: int) -> Account:
    # NO KEY: see "Lock order" above; key-share checks of rows referencing it must not wait.
    return Account.objects.select_for_update(no_key=True).get(pk=account_id)


def _lock_member_account(member: Member) -> Account:
    # One query in the usual case (the account exists); created on first use otherwise.
    try:
        return Account.objects.select_for_update(no_key=True).get(member=member)
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
    at, note = dated_in_open_period(at)
    if note:
        fields["explanation"] = [*(fields.get("explanation") or []), note]
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
        lot = Lot.objects.create(
            account=account,
            entry=entry,
            points=amount,
            remaining=max(0, amount - debt),
            earned_at=at,
            expires_at=expires_at if expires_explicit else expiry_for(at),
        )
        if debt:
            # The debt takes its part of the new lot at once; finance's as-of reports read it.
            LotConsumption.objects.create(entry=entry, lot=lot, points=min(debt, amount), at=at)
    else:
        _consume_lots(account, -amount, entry=entry)
    Account.objects.filter(pk=account.pk).update(
        balance=account.balance, updated_at=account.updated_at
    )
    return entry


def _consume_lots(account: Account, points: int, *, entry: Entry) -> datetime | None:
    """Take points from the oldest lots for ``entry``, recording which lots it consumed; return
    the soonest expiry among the lots touched. What no lot holds (a clawback into debt) is
    taken from none."""
    soonest = None
    if points <= 0:
        return soonest
    consumed = []
    # The account row is locked, so no other transaction changes these lots meanwhile.
    for lot in Lot.objects.filter(account=account, remaining__gt=0).order_by("earned_at", "id"):
        take = min(lot.remaining, points)
        lot.remaining -= take
        lot.save(update_fields=["remaining"])
        consumed.append(LotConsumption(entry=entry, lot=lot, points=take, at=entry.created_at))
        if lot.expires_at and (soonest is None or lot.expires_at < soonest):
            soonest = lot.expires_at
        points -= take
        if points == 0:
            break
    # Same transaction as the entry: a debit and its consumption records commit together.
    LotConsumption.objects.bulk_create(consumed)
    return soonest


def _save_counters(account: Account) -> None:
    Account.objects.filter(pk=account.pk).update(
        held=account.held, pending=account.pending, updated_at=account.updated_at
    )
