"""The liability per member as of a moment, streamed in chunks of accounts (bounded memory).

One row per account that held points or was in debt at ``as_of``: the member's public id, an
active card, their tier then, ``outstanding_points`` (0 for a member in debt), ``debt_points``,
the money value and the points that expire in each month. A chunk of accounts costs a fixed
number of queries, whatever its size, so a million members stream in a million / chunk steps.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.db.models import BigIntegerField, Exists, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from ledger.finance import liability
from ledger.finance.values import money, value_at
from ledger.models import Account, Entry, Lot, LotConsumption
from members.models import Card, Tier

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


def _held(as_of: datetime, ids: list[int]) -> dict[int, dict]:
    held: dict[int, dict] = defaultdict(lambda: defaultdict(int))
    parts = (
        (
            Lot.objects.filter(account_id__in=ids, earned_at__lte=as_of, remaining__gt=0),
            "",
            "remaining",
        ),
        (
            LotConsumption.objects.filter(
                lot__account_id__in=ids, at__gt=as_of, lot__earned_at__lte=as_of
            ),
            "lot__",
            "points",
        ),
    )
    for queryset, prefix, column in parts:
        rows = (
            queryset.annotate(
                account_key=F(f"{prefix}account_id"), month=liability._expiry_month(prefix)
            )
            .values("account_key", "month")
            .annotate(points=Sum(column))
            .order_by()
        )
        for row in rows:
            held[row["account_key"]][liability._month(row["month"])] += row["points"]
    return held


def member_rows(*, as_of: datetime, chunk: int = CHUNK) -> Iterator[MemberRow]:
    """Every account with points or debt at ``as_of``, in account id order."""
    value = value_at(as_of)
    tiers = dict(Tier.objects.values_list("pk", "name"))
    after = (
        Entry.objects.filter(account=OuterRef("pk"), created_at__gt=as_of)
        .order_by()
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    card = (
        Card.objects.filter(member=OuterRef("member"), status=Card.Status.ACTIVE)
        .order_by("pk")
        .values("number")[:1]
    )
    # Points or debt at as_of need a lot earned by then (a debt is an earn clawed back).
    # Correlated (EXISTS per account), not ``pk IN (all lots)``: each chunk walks the accounts
    # from ``last`` on by their primary key and looks at their own lots only; the IN form made
    # every chunk read every lot (a million members: 500 chunks x the whole lot table).
    accounts = Account.objects.filter(
        Exists(Lot.objects.filter(account=OuterRef("pk"), earned_at__lte=as_of))
    )
    last = 0
    while True:
        rows = list(
            accounts.filter(pk__gt=last)
            .order_by("pk")
            .annotate(
                balance_at=F("balance")
                - Coalesce(Subquery(after), Value(0), output_field=BigIntegerField()),
                public_id=F("member__public_id"),
                card=Subquery(card),
                tier=liability.tier_at("member", as_of),
            )
            .values("pk", "balance_at", "public_id", "card", "tier")[:chunk]
        )
        if not rows:
            return
        held = _held(as_of, [row["pk"] for row in rows])
        for row in rows:
            months = {month: points for month, points in held.get(row["pk"], {}).items() if points}
            outstanding = sum(months.values())
            debt = max(0, -row["balance_at"])
            if not outstanding and not debt:
                continue
            yield MemberRow(
                member=str(row["public_id"]),
                card=row["card"] or "",
                tier=tiers.get(row["tier"], ""),
                outstanding_points=outstanding,
                debt_points=debt,
                value=money(outstanding, value),
                by_month=months,
            )
        last = rows[-1]["pk"]
