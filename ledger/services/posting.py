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

Dates: a caller may date an entry in the past (``at=``: imports, late uploads, demo data), but
the lots say what the ledger did when the entry was posted, so ``_dated`` moves an entry's date
forward where the past would otherwise disagree with the lots (finance reconstructs what each lot
held at any moment from lot dates and consumption dates, and a roll-forward must close):

- a debit is never dated earlier than the newest lot it takes points from (else the points would
  leave a lot before it was earned: from the debit's date to the lot's, the balances would be
  lower than what the lots held);
- an entry that takes the balance below zero, or a credit while in debt, is never dated earlier
  than the account's newest entry (the debt is what all of them left);
- a credit is never dated earlier than the last movement of a debt (``Account.debt_moved_at``):
  dated before it, its points would have paid that debt, which the lots cannot redo.

The moved entry keeps the date it asked for in its explanation, ``{"note": "dated_after_lot" |
"dated_after_debt", "dated": ...}``, like an entry moved out of a closed period; its lot expires
as from that date, and the consumptions carry the entry's (moved) date. The business date also
stays on the purchase, return or redemption row. A channel's entry is dated now and never moves.

Savepoints: a write that cannot refuse once it has begun (an earn, storing a purchase) opens its
transaction with ``savepoint=False``. Inside a caller's transaction (every purchase) it then adds
no SAVEPOINT/RELEASE pair, and what can still fail in it is the database, after which PostgreSQL
aborts the caller's transaction anyway. A write that may refuse under its lock (a redeem, a hold)
keeps its savepoint, so that a caller may catch the refusal and go on.

The underscored helpers here are this package's own: the other modules of ``ledger.services``
lock and post through them; nothing outside the package calls them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import datetime

from django.db import connection
from django.db.models import Max
from django.utils.translation import gettext as _

from ledger import errors
from ledger.expiry import expiry_for
from ledger.finance.closing import dated_in_open_period
from ledger.models import Account, Entry, Lot, LotConsumption
from ledger.reasons import reason_check
from members.models import Member
from members.rows import Rows

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


# Every posting locks an account and writes an entry (and a credit its lot): through
# members.rows, which keeps their statements instead of compiling them on each posting.
_accounts = Rows(Account)
_entries = Rows(Entry)
_lots = Rows(Lot)


@functools.cache
def _lock_sql(column: str) -> str:
    # NO KEY: see "Lock order" above; key-share checks of rows referencing it must not wait.
    # SQLite has no row locks: its IMMEDIATE transaction holds the database write lock instead.
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    quote = connection.ops.quote_name
    table = quote(Account._meta.db_table)
    return f"SELECT {_accounts.columns()} FROM {table} WHERE {quote(column)} = %s{lock}"


def _locked(column: str, value: int) -> Account | None:
    # Written out once: every write that moves points takes this lock, and the ORM's
    # select_for_update().get() cost more CPU to compile than the statement to run.
    with connection.cursor() as cursor:
        cursor.execute(_lock_sql(column), [value])
        row = cursor.fetchone()
    return None if row is None else _accounts.instance(row)


def _lock(account_id: int) -> Account:
    account = _locked("id", account_id)
    if account is None:
        raise Account.DoesNotExist(f"No account {account_id}.")
    return account


def _lock_member_account(member: Member) -> Account:
    # One query in the usual case (the account exists); created on first use otherwise.
    account = _locked("member_id", member.pk)
    return account if account is not None else _lock(account_for(member).pk)


def _member_status(account: Account) -> str:
    # Read fresh: the caller's Member instance may be older than a block by customer service.
    return Member.objects.filter(pk=account.member_id).values_list("status", flat=True).get()


def _require_may_spend(account: Account) -> None:
    if _member_status(account) in SPENDING_REFUSED:
        raise errors.MemberBlocked()
    if account.balance < 0:
        raise errors.AccountInDebt()


def _newest_entry_at(account: Account) -> datetime | None:
    return Entry.objects.filter(account=account).aggregate(newest=Max("created_at"))["newest"]


def _dated(
    account: Account,
    *,
    at: datetime,
    amount: int,
    lots: Iterable[Lot] = (),
    not_before: datetime | None = None,
) -> tuple[datetime, dict]:
    """The moment to post an entry of ``amount`` asked for ``at`` on the locked ``account``,
    and the note to add to its explanation ({} when none): see "Dates" above, then the closed
    period (``dated_in_open_period``). No query unless the entry moves a debt."""
    floors = [not_before, *(lot.earned_at for lot in lots)]
    reason = "dated_after_lot"
    debt = account.balance < 0 or account.balance + amount < 0
    if debt:
        floors.append(_newest_entry_at(account))
    if amount > 0:
        floors.append(account.debt_moved_at)
    if debt or (amount > 0 and account.debt_moved_at and account.debt_moved_at > at):
        reason = "dated_after_debt"
    moment = max([at, *(floor for floor in floors if floor is not None)])
    moment, note = dated_in_open_period(moment)
    if note:
        note = {**note, "dated": at.isoformat()}
    elif moment != at:
        note = {"note": reason, "dated": at.isoformat()}
    return moment, note


def _post(
    account: Account,
    *,
    kind: str,
    amount: int,
    at: datetime,
    expires_at: datetime | None = None,
    expires_explicit: bool = False,
    not_before: datetime | None = None,
    **fields,
) -> Entry:
    """Write one entry on a locked account, keep its lots in step and save the new balance.

    ``at`` is the date asked for; the entry may be dated later (see "Dates" above), and not
    before ``not_before`` (a transfer's credit follows its debit)."""
    taking = _lots_taking(account, -amount) if amount < 0 else []
    requested = at
    at, note = _dated(
        account, at=at, amount=amount, lots=[lot for lot, _take in taking], not_before=not_before
    )
    if note:
        fields["explanation"] = [*(fields.get("explanation") or []), note]
    before = account.balance
    account.balance = before + amount
    if before < 0 or account.balance < 0:
        account.debt_moved_at = at
    account.updated_at = at
    entry = Entry(
        account=account,
        kind=kind,
        amount=amount,
        balance_after=account.balance,
        created_at=at,
        **fields,
    )
    _entries.insert([entry])
    if amount > 0:
        debt = max(0, -before)
        # A date moved out of a closed period counts from there (as before); one moved after a
        # debt keeps the expiry of the date it asked for.
        earned = at if note.get("note") == "closed_period" else requested
        lot = Lot(
            account=account,
            entry=entry,
            points=amount,
            remaining=max(0, amount - debt),
            earned_at=at,
            expires_at=expires_at if expires_explicit else expiry_for(earned),
        )
        _lots.insert([lot])
        if debt:
            # The debt takes its part of the new lot at once; finance's as-of reports read it.
            LotConsumption.objects.create(entry=entry, lot=lot, points=min(debt, amount), at=at)
    else:
        _lots_consume(taking, entry=entry)
    _accounts.update(
        account.pk,
        balance=account.balance,
        updated_at=account.updated_at,
        debt_moved_at=account.debt_moved_at,
    )
    return entry


def _lots_taking(account: Account, points: int) -> list[tuple[Lot, int]]:
    """Which lots a debit of ``points`` takes from, oldest first, and how much from each. What
    no lot holds (a clawback into debt) is taken from none."""
    taking = []
    # The account row is locked, so no other transaction changes these lots meanwhile.
    for lot in Lot.objects.filter(account=account, remaining__gt=0).order_by("earned_at", "id"):
        if points <= 0:
            break
        take = min(lot.remaining, points)
        taking.append((lot, take))
        points -= take
    return taking


def _lots_consume(taking: list[tuple[Lot, int]], *, entry: Entry) -> None:
    """Take the points of ``taking`` for ``entry``, recording which lots it consumed."""
    consumed = []
    for lot, take in taking:
        lot.remaining -= take
        lot.save(update_fields=["remaining"])
        consumed.append(LotConsumption(entry=entry, lot=lot, points=take, at=entry.created_at))
    # Same transaction as the entry: a debit and its consumption records commit together.
    LotConsumption.objects.bulk_create(consumed)


def _save_counters(account: Account) -> None:
    _accounts.update(
        account.pk, held=account.held, pending=account.pending, updated_at=account.updated_at
    )
