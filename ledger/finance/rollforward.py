"""The roll-forward of a period: opening liability + movements = closing liability.

For the programme and per tier, in points and in money::

    opening + issued + redeemed + expired + adjusted + reversed + transferred
            + tier moves + change in members' debt (+ revaluation, money only) = closing

Movements are the entries dated in the period, signed (a redemption is negative), each valued
at the point value in force at its moment. Why the two less obvious lines:

- **Debt.** The liability is the sum of the *positive* balances. A return that claws back more
  than the member holds lowers the balance below zero but the liability only to zero; the
  later points that pay the debt raise the balance but not the liability. With ``D`` the
  members' debt, liability = sum of balances + ``D``, so the line is ``D(closing) - D(opening)``.
- **Tier moves** (per tier only): a member who changes tier takes their balance along (out of
  the old tier, into the new one), at the moment of the change; entries count in the tier the
  member was in at their own moment.
- **Revaluation** (money only): when the value of a point changes inside the period, the points
  outstanding just before the change are revalued by the difference.

Every line is computed on its own, from entries, balances, tier history and lots, so the
difference line checks the ledger rather than being the remainder; it is zero (a test proves it
on randomised histories), and a period's closing is the next period's opening by construction
(the same "as of" moment).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import BigIntegerField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from ledger.finance import liability
from ledger.finance.moments import day_end
from ledger.finance.planner import report_reading
from ledger.finance.values import Value as PointValueAt
from ledger.finance.values import value_at, value_changes
from ledger.models import Account, Entry
from members.models import Tier, TierHistory

MOVEMENTS = {
    Entry.Kind.EARN: "issued",
    Entry.Kind.REDEEM: "redeemed",
    Entry.Kind.EXPIRE: "expired",
    Entry.Kind.ADJUST: "adjusted",
    Entry.Kind.REVERSE: "reversed",
    Entry.Kind.TRANSFER: "transferred",
}
LINES = {
    "opening": _("Opening liability"),
    "issued": _("Issued"),
    "redeemed": _("Redeemed"),
    "expired": _("Expired"),
    "adjusted": _("Staff adjustments"),
    "reversed": _("Reversed (returns)"),
    "transferred": _("Transfers between members"),
    "tier_moves": _("Members changing tier"),
    "debt": _("Change in members' debt"),
    "revaluation": _("Revaluation (change of point value)"),
    "closing": _("Closing liability"),
    "difference": _("Difference"),
}
BEFORE = timedelta(microseconds=1)
ALL = "all"  # the programme's key beside the tier ids


@dataclass
class Line:
    points: int = 0
    money: Decimal = Decimal(0)


@dataclass
class RollForward:
    start: datetime  # opening as of this moment (exclusive for movements)
    end: datetime  # closing as of this moment
    lines: dict[str, Line]
    by_tier: list[tuple[Tier | None, dict[str, Line]]] = field(default_factory=list)
    value_opening: PointValueAt | None = None
    value_closing: PointValueAt | None = None

    @property
    def closes(self) -> bool:
        return self.lines["difference"] == Line()


def _stretches(start: datetime, end: datetime) -> list[tuple[datetime, datetime, PointValueAt]]:
    """The period cut where the point value changes: (after, until, value) with movements in
    ``(after, until]`` valued at ``value``."""
    cuts, value = [], value_at(start)
    after = start
    for change in value_changes(after=start, until=end):
        cuts.append((after, change.valid_from - BEFORE, value))
        after, value = change.valid_from - BEFORE, change
    cuts.append((after, end, value))
    return cuts


def _movements(after: datetime, until: datetime) -> dict[tuple, int]:
    """{(key, line): points} of the entries in ``(after, until]``, for the programme and per
    tier of the member at the entry's moment."""
    out: dict[tuple, int] = defaultdict(int)
    rows = (
        Entry.objects.filter(created_at__gt=after, created_at__lte=until)
        .annotate(tier=liability.tier_at("account__member", OuterRef("created_at")))
        .values("kind", "tier")
        .annotate(points=Sum("amount"))
        .order_by()
    )
    for row in rows:
        line = MOVEMENTS[row["kind"]]
        out[(ALL, line)] += row["points"]
        out[(row["tier"], line)] += row["points"]
    return out


def _tier_moves(after: datetime, until: datetime) -> dict[tuple, int]:
    """{(tier, "tier_moves"): points}: each member's balance just before a tier change in
    ``(after, until]`` leaves the old tier and enters the new one."""
    # The member's balance just before the change: now, less what was posted since.
    balance_before = Subquery(
        Account.objects.filter(member=OuterRef("member"))
        .annotate(
            before=F("balance")
            - Coalesce(
                Subquery(
                    Entry.objects.filter(
                        account=OuterRef("pk"), created_at__gte=OuterRef(OuterRef("at"))
                    )
                    .order_by()
                    .values("account")
                    .annotate(total=Sum("amount"))
                    .values("total")
                ),
                Value(0),
                output_field=BigIntegerField(),
            )
        )
        .values("before")[:1],
        output_field=BigIntegerField(),
    )
    out: dict[tuple, int] = defaultdict(int)
    rows = (
        TierHistory.objects.filter(at__gt=after, at__lte=until)
        .annotate(balance=Coalesce(balance_before, Value(0), output_field=BigIntegerField()))
        .values_list("from_tier", "to_tier", "balance")
    )
    for from_tier, to_tier, balance in rows:
        if balance and from_tier != to_tier:
            out[(from_tier, "tier_moves")] -= balance
            out[(to_tier, "tier_moves")] += balance
    return out


def _debt(as_of: datetime) -> dict:
    by_tier = liability.debt_by_tier(as_of=as_of)
    return {ALL: sum(by_tier.values()), **by_tier}


def _outstanding(as_of: datetime) -> dict:
    by_tier = liability.by_tier(as_of=as_of)
    return {ALL: sum(by_tier.values()), **by_tier}


@report_reading
def rollforward(*, start: datetime, end: datetime) -> RollForward:
    """The roll-forward from the liability as of ``start`` to the liability as of ``end``."""
    if end < start:
        raise ValueError("end before start")
    lines: dict = defaultdict(lambda: defaultdict(Line))

    def add(key, line, points, value):
        lines[key][line].points += points
        lines[key][line].money += Decimal(points) * value.value

    stretches = _stretches(start, end)
    opening = _outstanding(start)
    for key, points in opening.items():
        add(key, "opening", points, stretches[0][2])
    debt_then = _debt(start)
    for index, (after, until, value) in enumerate(stretches):
        if index:
            # The points outstanding just before the change, revalued (money only).
            previous = stretches[index - 1][2]
            for key, points in _outstanding(after).items():
                lines[key]["revaluation"].money += Decimal(points) * (value.value - previous.value)
        for (key, line), points in _movements(after, until).items():
            add(key, line, points, value)
        for (key, line), points in _tier_moves(after, until).items():
            add(key, line, points, value)
        debt_now = _debt(until)
        for key in set(debt_now) | set(debt_then):
            add(key, "debt", debt_now.get(key, 0) - debt_then.get(key, 0), value)
        debt_then = debt_now
    closing_value = stretches[-1][2]
    for key, points in _outstanding(end).items():
        add(key, "closing", points, closing_value)
    lines.setdefault(ALL, defaultdict(Line))
    result = {}
    for key, by_line in lines.items():
        ordered = {code: by_line.get(code, Line()) for code in LINES if code != "difference"}
        moved = [line for code, line in ordered.items() if code not in ("opening", "closing")]
        ordered["difference"] = Line(
            ordered["closing"].points
            - ordered["opening"].points
            - sum(line.points for line in moved),
            ordered["closing"].money
            - ordered["opening"].money
            - sum((line.money for line in moved), Decimal(0)),
        )
        result[key] = ordered
    tiers = Tier.objects.in_bulk([key for key in result if key not in (ALL, None)])
    by_tier = sorted(
        ((tiers.get(key), line) for key, line in result.items() if key != ALL),
        key=lambda item: (item[0] is None, -(item[0].rank if item[0] else 0)),
    )
    return RollForward(
        start=start,
        end=end,
        lines=result[ALL],
        by_tier=by_tier,
        value_opening=stretches[0][2],
        value_closing=closing_value,
    )


def rollforward_days(*, first: date, last: date) -> RollForward:
    """The roll-forward of the days ``first`` to ``last`` (inclusive, programme's time zone)."""
    return rollforward(start=day_end(first - timedelta(days=1)), end=day_end(last))


def rollforward_month(*, year: int, month: int) -> RollForward:
    first = date(year, month, 1)
    last = date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)
    return rollforward_days(first=first, last=last)
