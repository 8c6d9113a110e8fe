"""The points liability as of any moment: outstanding points and their money value, by expiry
month and by tier, with members in debt, pending points and held points apart.

Exact for past moments, from the lot consumptions (``ledger.models.finance``): what a lot held
at ``as_of`` is its points minus what was consumed from it at or before ``as_of``, which is
``remaining`` now plus what was consumed from it after ``as_of``. The report sums those two
parts, so a recent date reads the open lots (a partial index) and the consumptions since then
(an index on ``at``), not the whole history. Outstanding points are the sum over lots, which is
the sum of the positive balances: a member in debt holds no lots and counts 0 here, the debt is
shown apart.

The tier of a lot is its member's tier at ``as_of``: the last tier change at or before it, else
the tier the first later change started from, else the member's tier now (never changed).

Pending points as of a past moment are exact like the lots, from the pending cancellations:
what a pending row held at ``as_of`` is what it holds now (or held when it matured; 0 once
cancelled) plus what was cancelled from it after ``as_of``, for the rows created by then and
not matured by then. Held points are exact.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth

from ledger.finance.planner import report_connection, report_reading
from ledger.finance.values import Value as PointValueAt
from ledger.finance.values import money, value_at
from ledger.models import (
    Account,
    Entry,
    Hold,
    Lot,
    LotConsumption,
    PendingCancellation,
    PendingEarn,
)
from members.models import Tier, TierHistory


def zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def tier_at(member_path: str, as_of):
    """An expression: the tier id of the member at ``member_path`` as of ``as_of`` (a moment,
    or ``OuterRef`` to a moment of the row, e.g. an entry's ``created_at``). ``member_path``
    "" is the row itself (a query on members)."""
    member = OuterRef(member_path or "pk")
    before = TierHistory.objects.filter(member=member, at__lte=as_of).order_by("-at", "-id")
    after = TierHistory.objects.filter(member=member, at__gt=as_of).order_by("at", "id")
    return Case(
        When(Exists(before), then=Subquery(before.values("to_tier")[:1])),
        When(Exists(after), then=Subquery(after.values("from_tier")[:1])),
        default=F(f"{member_path}__tier" if member_path else "tier"),
        output_field=BigIntegerField(),
    )


def _lot_parts(as_of: datetime):
    """The two querysets whose summed ``points`` per group is what lots held at ``as_of``,
    and the path prefix to the lot in each."""
    held_now = Lot.objects.filter(earned_at__lte=as_of, remaining__gt=0).annotate(
        part=F("remaining")
    )
    taken_since = LotConsumption.objects.filter(at__gt=as_of, lot__earned_at__lte=as_of).annotate(
        part=F("points")
    )
    return ((held_now, ""), (taken_since, "lot__"))


def _grouped(as_of: datetime, **group) -> dict[tuple, int]:
    """Points held at ``as_of`` summed per group; ``group`` maps names to a function of the
    lot path prefix returning an expression."""
    totals: dict[tuple, int] = defaultdict(int)
    for queryset, prefix in _lot_parts(as_of):
        rows = (
            queryset.annotate(**{name: make(prefix) for name, make in group.items()})
            .values(*group)
            .annotate(total=Sum("part"))
            .order_by()
        )
        for row in rows:
            totals[tuple(row[name] for name in group)] += row["total"]
    return {key: total for key, total in totals.items() if total}


def _expiry_month(prefix: str):
    return TruncMonth(f"{prefix}expires_at", tzinfo=zone())


@dataclass
class Row:
    points: int
    money: Decimal


@dataclass
class Liability:
    as_of: datetime
    value: PointValueAt
    points: int
    money: Decimal
    by_expiry_month: list[tuple[date | None, Row]] = field(default_factory=list)
    by_tier: list[tuple[Tier | None, Row]] = field(default_factory=list)
    members_in_debt: int = 0
    debt_points: int = 0
    pending_points: int = 0
    held_points: int = 0


def _month(value) -> date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, datetime) else value


def points_outstanding(*, as_of: datetime) -> int:
    """What all lots held at ``as_of``: the sum of the positive balances then."""
    total = 0
    for queryset, _prefix in _lot_parts(as_of):
        total += queryset.aggregate(total=Sum("part"))["total"] or 0
    return total


def by_expiry_month(*, as_of: datetime) -> dict[date | None, int]:
    """Points held at ``as_of`` per month of expiry (programme's time zone); None: never."""
    grouped = _grouped(as_of, month=_expiry_month)
    return {_month(key[0]): total for key, total in grouped.items()}


# A member's tier at ``%(as_of)s`` by ``tier_at``'s rule, written out in SQL over ``account`` and
# ``member`` rows: the per-member export's, whose chunks of accounts look up only their own
# members (``BY_TIER_SQL`` below, over every account, joins the rule set-based instead).
TIER_THEN_SQL = """CASE
WHEN EXISTS (SELECT 1 FROM members_tierhistory h
             WHERE h.member_id = account.member_id AND h.at <= %(as_of)s)
THEN (SELECT h.to_tier_id FROM members_tierhistory h
      WHERE h.member_id = account.member_id AND h.at <= %(as_of)s
      ORDER BY h.at DESC, h.id DESC LIMIT 1)
WHEN EXISTS (SELECT 1 FROM members_tierhistory h
             WHERE h.member_id = account.member_id AND h.at > %(as_of)s)
THEN (SELECT h.from_tier_id FROM members_tierhistory h
      WHERE h.member_id = account.member_id AND h.at > %(as_of)s
      ORDER BY h.at, h.id LIMIT 1)
ELSE member.tier_id
END"""

# Points held at a moment per tier of their member then, in one statement. Summed per account
# first (each of the two parts of ``_lot_parts`` grouped on its own, so that PostgreSQL knows
# how many accounts to expect and joins them to their members by hashing), then each member's
# tier then by ``tier_at``'s rule, set-based: the latest history row at or before the moment,
# else the earliest after it, else the member's tier now. At a million members this took 9.4 s
# where ``TIER_THEN_SQL``'s correlated lookups (two index probes and a sort per member) and one
# grouping of the two parts took 15.8-22 s (bench/liability_bench.py's data set, 2026-12-03).
# Plain SQL that SQLite runs too (CTEs and window functions, no LATERAL).
BY_TIER_SQL = """
WITH held AS (
    SELECT lot.account_id, SUM(lot.remaining) AS points
    FROM ledger_lot lot
    WHERE lot.earned_at <= %(as_of)s AND lot.remaining > 0
    GROUP BY lot.account_id
    UNION ALL
    SELECT lot.account_id, SUM(taken.points)
    FROM ledger_lotconsumption taken JOIN ledger_lot lot ON lot.id = taken.lot_id
    WHERE taken.at > %(as_of)s AND lot.earned_at <= %(as_of)s
    GROUP BY lot.account_id
), before AS (
    SELECT member_id, to_tier_id,
           ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY at DESC, id DESC) AS n
    FROM members_tierhistory WHERE at <= %(as_of)s
), after AS (
    SELECT member_id, from_tier_id,
           ROW_NUMBER() OVER (PARTITION BY member_id ORDER BY at, id) AS n
    FROM members_tierhistory WHERE at > %(as_of)s
)
SELECT CASE WHEN before.member_id IS NOT NULL THEN before.to_tier_id
            WHEN after.member_id IS NOT NULL THEN after.from_tier_id
            ELSE member.tier_id END AS tier_then,
       SUM(held.points)
FROM held
JOIN ledger_account account ON account.id = held.account_id
JOIN members_member member ON member.id = account.member_id
LEFT JOIN before ON before.member_id = member.id AND before.n = 1
LEFT JOIN after ON after.member_id = member.id AND after.n = 1
GROUP BY 1
"""


def by_tier(*, as_of: datetime) -> dict[int | None, int]:
    """Points held at ``as_of`` per tier id of their member at ``as_of``; None: no tier."""
    reader = report_connection()
    with reader.cursor() as cursor:
        cursor.execute(BY_TIER_SQL, {"as_of": reader.ops.adapt_datetimefield_value(as_of)})
        return {tier: int(points) for tier, points in cursor.fetchall() if points}


def balances_at(as_of: datetime):
    """Accounts annotated with ``balance_at``, limited to those whose balance at ``as_of`` may
    differ from now or be negative (negative now, or with entries after ``as_of``)."""
    after = (
        Entry.objects.filter(account=OuterRef("pk"), created_at__gt=as_of)
        .order_by()
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    changed = Entry.objects.filter(created_at__gt=as_of).values("account_id")
    return Account.objects.filter(Q(balance__lt=0) | Q(pk__in=changed)).annotate(
        balance_at=F("balance")
        - Coalesce(Subquery(after), Value(0), output_field=BigIntegerField())
    )


def debt_by_tier(*, as_of: datetime) -> dict[int | None, int]:
    """Points of debt at ``as_of`` per tier id of the indebted members then."""
    rows = (
        balances_at(as_of)
        .filter(balance_at__lt=0)
        .annotate(tier=tier_at("member", as_of))
        .values("tier")
        .annotate(points=Sum("balance_at"))
        .order_by()
    )
    return {row["tier"]: -row["points"] for row in rows}


def debt_at(*, as_of: datetime) -> tuple[int, int]:
    """(members in debt, points of debt) at ``as_of``."""
    row = (
        balances_at(as_of)
        .filter(balance_at__lt=0)
        .aggregate(members=Count("pk"), points=Sum("balance_at"))
    )
    return row["members"], -(row["points"] or 0)


def pending_at(*, as_of: datetime) -> int:
    """Pending points at ``as_of`` (see the module docstring): two sums, like the lots."""
    held_now = PendingEarn.objects.filter(created_at__lte=as_of).filter(
        Q(status=PendingEarn.Status.PENDING)
        | Q(status=PendingEarn.Status.MATURED, resolved_at__gt=as_of)
    )
    cancelled_since = PendingCancellation.objects.filter(
        at__gt=as_of, pending__created_at__lte=as_of
    )
    return (held_now.aggregate(total=Sum("points"))["total"] or 0) + (
        cancelled_since.aggregate(total=Sum("points"))["total"] or 0
    )


def held_at(*, as_of: datetime) -> int:
    rows = Hold.objects.filter(created_at__lte=as_of).filter(
        Q(status=Hold.Status.OPEN) | Q(resolved_at__gt=as_of)
    )
    return rows.aggregate(total=Sum("points"))["total"] or 0


@report_reading
def liability_at(*, as_of: datetime) -> Liability:
    """The whole report of ``as_of`` (a bounded number of queries, whatever the programme)."""
    value = value_at(as_of)
    months = by_expiry_month(as_of=as_of)
    tiers = by_tier(as_of=as_of)
    tier_rows = Tier.objects.in_bulk([pk for pk in tiers if pk is not None])
    points = sum(months.values())
    members, debt = debt_at(as_of=as_of)
    return Liability(
        as_of=as_of,
        value=value,
        points=points,
        money=money(points, value),
        by_expiry_month=[
            (month, Row(total, money(total, value)))
            for month, total in sorted(months.items(), key=lambda item: (item[0] is None, item[0]))
        ],
        by_tier=sorted(
            ((tier_rows.get(pk), Row(total, money(total, value))) for pk, total in tiers.items()),
            key=lambda item: (item[0] is None, -(item[0].rank if item[0] else 0)),
        ),
        members_in_debt=members,
        debt_points=debt,
        pending_points=pending_at(as_of=as_of),
        held_points=held_at(as_of=as_of),
    )
