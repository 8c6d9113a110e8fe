"""The dashboard's reads: a period's figures and the previous period's, from the daily rows.

Past days come from `DashboardDay` / `DashboardRewardDay` (one query each for both periods);
today, when the period includes it, is computed live by `days.day_compute` over today's rows
only, so the page is current without waiting for the hourly refresh. Nothing here reads a
member's history: the page costs the same on 3 days of rows and on 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils.translation import gettext_lazy as _

from campaigns import nps
from loyalty_site.dashboard import days as days_module
from loyalty_site.models import DashboardDay, DashboardRewardDay
from rewards.models import Redemption, Reward

PRESETS = {
    "7d": (_("Last 7 days"), 7),
    "30d": (_("Last 30 days"), 30),
    "90d": (_("Last 90 days"), 90),
    "12m": (_("Last 12 months"), 365),
}
DEFAULT_PRESET = "30d"
MAX_DAYS = 3 * 366

# Flows add up over a period; stocks are read at its last day.
FLOWS = [
    "enrolments",
    "points_issued",
    "points_redeemed",
    "points_expired",
    "points_adjusted",
    "points_reversed",
    "redemptions",
    "purchases",
    "revenue",
    "nps_responses",
    "nps_promoters",
    "nps_detractors",
]
STOCKS = ["points_outstanding", "members_in_debt", "active_members_30d"]


@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        end = self.start - timedelta(days=1)
        return Period(start=end - timedelta(days=self.days - 1), end=end)

    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]


def period_preset(preset: str, *, today: date) -> Period:
    return Period(start=today - timedelta(days=PRESETS[preset][1] - 1), end=today)


@dataclass
class Totals:
    """A period's figures: flows summed, stocks at its last day with a row."""

    values: dict = field(default_factory=dict)
    days_with_rows: int = 0

    def __getitem__(self, name):
        return self.values.get(name, 0)

    @property
    def redemption_rate(self) -> float | None:
        """Points redeemed as a share of the points issued in the period (%)."""
        issued = self["points_issued"]
        return 100.0 * self["points_redeemed"] / issued if issued else None

    @property
    def nps(self) -> float | None:
        return nps.nps(
            promoters=self["nps_promoters"],
            detractors=self["nps_detractors"],
            responses=self["nps_responses"],
        )


def _totals(rows: list[dict], period: Period) -> Totals:
    inside = [r for r in rows if period.start <= r["day"] <= period.end]
    values = {
        name: sum((r[name] for r in inside), Decimal(0) if name == "revenue" else 0)
        for name in FLOWS
    }
    last = max(inside, key=lambda r: r["day"], default=None)
    for name in STOCKS:
        values[name] = last[name] if last else 0
    return Totals(values=values, days_with_rows=len(inside))


@dataclass
class PeriodFigures:
    period: Period
    previous: Period
    current: Totals
    before: Totals
    series: list[dict]  # the current period's rows, one per day, oldest first (gaps filled)
    live: bool  # today's figures were computed now


def _row_dict(row: DashboardDay) -> dict:
    # computed_at: whether yesterday's row is final, a base for today's live stocks.
    return {name: getattr(row, name) for name in ["day", "computed_at", *FLOWS, *STOCKS]}


def _empty(day: date) -> dict:
    return {"day": day, **dict.fromkeys([*FLOWS, *STOCKS], 0), "revenue": Decimal(0)}


def period_figures(period: Period, *, today: date | None = None) -> PeriodFigures:
    """The figures of `period` and of the previous period of the same length.

    Queries: one for the stored rows of both periods, plus, when `period` includes today, the
    live day (a fixed number of queries over today's rows).
    """
    today = today or days_module.local_today()
    previous = period.previous()
    stored = {
        row.day: _row_dict(row)
        for row in DashboardDay.objects.filter(day__gte=previous.start, day__lte=period.end)
    }
    live = period.start <= today <= period.end
    if live:
        yesterday = stored.get(today - timedelta(days=1))
        if yesterday is None:
            # Not in the rows read above (a period starting today): one more query.
            yesterday_row = DashboardDay.objects.filter(day=today - timedelta(days=1)).first()
        else:
            yesterday_row = DashboardDay(**yesterday)
        # Today's stocks from the stored balances (days._stocks_now: yesterday's final row
        # plus today's moved accounts, or one pass over the accounts), never an account's
        # history; a `today` other than the real one (a test's) chains as a refresh would.
        computed = days_module.day_compute(
            today,
            previous=yesterday_row,
            rolling=False,
            stocks_now=today == days_module.local_today(),
        )
        row = {**_empty(today), **stored.get(today, {}), **computed["figures"], "day": today}
        if today not in stored:
            # The rolling 30 days are not computed live (the costliest query): yesterday's.
            row["active_members_30d"] = yesterday_row.active_members_30d if yesterday_row else 0
        stored[today] = {name: row[name] for name in ["day", *FLOWS, *STOCKS]}
    rows = list(stored.values())
    series = [stored.get(day) or _empty(day) for day in period.dates() if day <= today]
    return PeriodFigures(
        period=period,
        previous=previous,
        current=_totals(rows, period),
        before=_totals(rows, previous),
        series=series,
        live=live,
    )


@dataclass(frozen=True)
class RewardRank:
    reward: Reward
    redemptions: int
    points: int


def top_rewards(period: Period, *, limit: int = 5, today: date | None = None) -> list[RewardRank]:
    """The rewards most redeemed (confirmed) in `period`, most first; today's counted live."""
    today = today or days_module.local_today()
    counts: dict[int, list[int]] = {}
    stored = (
        DashboardRewardDay.objects.filter(day__gte=period.start, day__lte=period.end)
        .exclude(day=today)
        .values("reward_id")
        .annotate(redemptions=Sum("redemptions"), points=Sum("points"))
    )
    for row in stored:
        counts[row["reward_id"]] = [row["redemptions"], row["points"]]
    if period.start <= today <= period.end:
        start = days_module.day_start(today)
        end = days_module.day_start(today + timedelta(days=1))
        for row in (
            Redemption.objects.filter(
                confirmed_at__gte=start, confirmed_at__lt=end, reward__isnull=False
            )
            .order_by()
            .values("reward_id")
            .annotate(redemptions=Count("id"), points=Sum("points"))
        ):
            found = counts.setdefault(row["reward_id"], [0, 0])
            found[0] += row["redemptions"]
            found[1] += row["points"]
    ranked = sorted(counts.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))[:limit]
    rewards = Reward.objects.in_bulk([reward_id for reward_id, _counts in ranked])
    return [
        RewardRank(reward=rewards[reward_id], redemptions=n, points=points)
        for reward_id, (n, points) in ranked
        if reward_id in rewards
    ]
