"""Finding and locking the member a campaigns use case acts on.

Locking order, to keep concurrent requests from deadlocking: the member row first (it serialises
one member's purchases, events and returns, which makes first-purchase bonuses, per-member caps
and velocity checks exact), then budgeted earning rules by id, then budgeted campaigns by id and
the member's campaign usage rows (campaigns.services.budgets), then the ledger's account row
(taken inside ledger.services; see the lock order in ledger.services.posting).

The member row is locked ``FOR NO KEY UPDATE``, not ``FOR UPDATE``. A write that only references
the member (a redemption, an adjustment: rows with a foreign key to the member) holds the account
lock and, at commit, its deferred foreign-key check takes ``FOR KEY SHARE`` on the member row.
``FOR UPDATE`` conflicts with that, so a purchase holding the member and waiting for the account
deadlocked with a redemption holding the account and checking the member (issue 12). ``FOR NO
KEY UPDATE`` still serialises the use cases above (it conflicts with itself) but lets key-share
checks through; nothing here changes the member's id or another referenced key.
"""

from __future__ import annotations

import functools

from django.db import connection

from ledger.models import Account
from members import selectors as member_selectors
from members.errors import MemberNotFound
from members.models import Card, Member
from members.rows import Rows
from members.selectors import tiers_cached

_members = Rows(Member)


@functools.cache
def _member_lock_sql(column: str) -> str:
    """SELECT … FOR NO KEY UPDATE of a member by ``column``, unless erased: every column."""
    # SQLite has no row locks: its IMMEDIATE transaction holds the database write lock instead.
    lock = " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""
    return (
        f"SELECT {_members.columns()} FROM {connection.ops.quote_name(Member._meta.db_table)} "
        f"WHERE {connection.ops.quote_name(column)} = %s AND status <> %s{lock}"
    )


def member_lock(
    member: Member | None = None, *, member_id=None, card_number: str | None = None
) -> Member:
    """The member row, locked (FOR NO KEY UPDATE), found by instance, public id or card number.

    One query: the lookup is the lock. It is written out once rather than compiled by the ORM
    on every purchase, where compiling it cost more than running it (and read without
    `Member.objects.raw()`: see members.rows). An erased member is not found: nothing may earn
    or spend on their behalf.
    """
    if member is None and member_id is not None:
        column = "public_id"
        value = Member._meta.get_field("public_id").get_db_prep_value(member_id, connection)
    else:
        column, value = "id", _resolve_member(member, card_number).pk
    with connection.cursor() as cursor:
        cursor.execute(_member_lock_sql(column), [value, Member.Status.ERASED])
        row = cursor.fetchone()
    if row is None:
        raise MemberNotFound()
    found = _members.instance(row)
    if found.tier_id is not None:
        # The earning rules read the member's tier: from the cached ladder, not a query.
        tier = next((t for t in tiers_cached() if t.pk == found.tier_id), None)
        if tier is not None:
            Member.tier.field.set_cached_value(found, tier)
    return found


def _resolve_member(member: Member | None, card_number: str | None) -> Member:
    if member is not None:
        return member
    return card_active(card_number).member


def card_active(card_number: str | None) -> Card:
    """The active card a channel presented, with its member (the members app's one lookup)."""
    if not card_number:
        raise MemberNotFound()
    return member_selectors.card_active(card_number)


def balance_of(member: Member) -> tuple[int, int]:
    account = Account.objects.filter(member=member).only("balance", "pending").first()
    return (account.balance, account.pending) if account else (0, 0)
