"""The liability per member as of a moment, streamed in chunks of accounts (bounded memory).

One row per account that held points or was in debt at ``as_of``: the member's public id, an
active card, their tier then, ``outstanding_points`` (0 for a member in debt), ``debt_points``,
the money value and the points that expire in each month. A chunk of accounts is one
statement, whatever its size, so a million members stream in a million / chunk steps.

The statement is plain SQL that PostgreSQL and SQLite both run: what each lot held at
``as_of`` (the two parts of ``liability._lot_parts``), summed per account and expiry month and
handed back as one text column per account (``"2027-03:120;never:5"``). The month is computed
by the database with the same expression Django's ``TruncMonth(tzinfo=zone())`` compiles to,
so the buckets are the report's, DST included; the database gives text, not an aware datetime
per (account, month) for Django to rebuild, which is where the ORM version spent two thirds of
its time. One chunk per statement rather than one server-side cursor over all accounts: it
works the same through PgBouncer in transaction mode (no server-side cursors) and on SQLite,
and keeps no transaction open while the caller writes the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from ledger.finance import liability
from ledger.finance.planner import report_connection
from ledger.finance.values import money, value_at
from members.database import big_read
from members.models import Card, Member, Tier

CHUNK = 2000


@dataclass
class MemberRow:
    member: str  # public id
    card: str
    tier: str
    outstanding_points: int
    debt_points: int
    value: Decimal
    by_month: dict[date | None, int]


def expiry_months(*, as_of: datetime) -> list[date | None]:
    """The expiry months with points at ``as_of``, in order (None, never, last)."""
    months = liability.by_expiry_month(as_of=as_of)
    return sorted(months, key=lambda month: (month is None, month))


# %(after)s: the last account id of the previous chunk. Accounts with a lot earned by as_of
# (points or debt at as_of need one: a debt is an earn clawed back), walked by primary key.
# The lots are read per account, in a correlated subquery: a join of the chunk with all lots
# got a hash join that read the whole lot table once per chunk.
CHUNK_SQL = (
    """
SELECT account.id,
       member.public_id,
       (SELECT card.number FROM members_card card
        WHERE card.member_id = account.member_id AND card.status = %(active)s
        ORDER BY card.id LIMIT 1),
       """
    + liability.TIER_THEN_SQL
    + """,
       account.balance - COALESCE((SELECT SUM(entry.amount) FROM ledger_entry entry
                                   WHERE entry.account_id = account.id
                                     AND entry.created_at > %(as_of)s), 0),
       (SELECT {concat}(COALESCE(month, 'never') || ':' || CAST(points AS TEXT), ';')
        FROM (SELECT SUBSTR(CAST({month} AS TEXT), 1, 7) AS month, SUM(points) AS points
              FROM (SELECT lot.expires_at, lot.remaining AS points
                    FROM ledger_lot lot
                    WHERE lot.account_id = account.id AND lot.earned_at <= %(as_of)s
                      AND lot.remaining > 0
                    UNION ALL
                    SELECT lot.expires_at, taken.points
                    FROM ledger_lotconsumption taken JOIN ledger_lot lot ON lot.id = taken.lot_id
                    WHERE lot.account_id = account.id AND taken.at > %(as_of)s
                      AND lot.earned_at <= %(as_of)s) parts
              GROUP BY 1
              HAVING SUM(points) <> 0) months)
FROM ledger_account account
JOIN members_member member ON member.id = account.member_id
WHERE account.id > %(after)s AND EXISTS (
    SELECT 1 FROM ledger_lot lot
    WHERE lot.account_id = account.id AND lot.earned_at <= %(as_of)s)
ORDER BY account.id
LIMIT %(chunk)s
"""
)


def _chunk_sql(reader) -> tuple[str, dict]:
    """``CHUNK_SQL`` for ``reader``'s database, and the parameters of its month expression."""
    month, month_params = reader.ops.datetime_trunc_sql(
        "month", "expires_at", (), liability.zone().key
    )
    names = {f"month_{number}": param for number, param in enumerate(month_params)}
    month = month % tuple(f"%({name})s" for name in names)
    concat = "STRING_AGG" if reader.vendor == "postgresql" else "GROUP_CONCAT"
    return CHUNK_SQL.replace("{month}", month).replace("{concat}", concat), names


def _chunk_read(reader, sql: str, params: dict) -> list[tuple]:
    """One chunk's rows, as a big read of its own (``members.database.big_read``): the
    same statement runs for every chunk, and each is planned for its range of accounts."""
    with big_read(reader), reader.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def member_rows(*, as_of: datetime, chunk: int = CHUNK) -> Iterator[MemberRow]:
    """Every account with points or debt at ``as_of``, in account id order."""
    value = value_at(as_of)
    tiers = dict(Tier.objects.values_list("pk", "name"))
    reader = report_connection()
    sql, params = _chunk_sql(reader)
    params |= {
        "as_of": reader.ops.adapt_datetimefield_value(as_of),
        # One row more than the chunk tells whether another chunk follows, without a last
        # statement that finds nothing.
        "chunk": chunk + 1,
        "active": Card.Status.ACTIVE.value,
    }
    # SQLite hands the UUID back as its 32 hex digits.
    public_id_parse = Member._meta.get_field("public_id").to_python
    months: dict[str, date | None] = {"never": None}
    last = 0
    while True:
        rows = _chunk_read(reader, sql, params | {"after": last})
        more = len(rows) > chunk
        rows = rows[:chunk]
        for _pk, public_id, card, tier, balance_at, by_month in rows:
            held = {}
            for part in by_month.split(";") if by_month else ():
                text, points = part.split(":")
                if text not in months:
                    months[text] = date.fromisoformat(f"{text}-01")
                held[months[text]] = int(points)
            outstanding = sum(held.values())
            debt = max(0, -int(balance_at))  # PostgreSQL: numeric (a SUM of bigints)
            if not outstanding and not debt:
                continue
            yield MemberRow(
                member=str(public_id_parse(public_id)),
                card=card or "",
                tier=tiers.get(tier, ""),
                outstanding_points=outstanding,
                debt_points=debt,
                value=money(outstanding, value),
                by_month=held,
            )
        if not more:
            return
        last = rows[-1][0]
