"""A campaign's results as the pages show them: per window and metric, control and treated
means with the lift, its 95 % intervals and p-value, and the sample-ratio check.

Reads the sums `campaign_results_refresh` stored (never the members' history: results refresh
in a task, not on page view) and hands them to the pure statistics of `campaigns.stats`.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import BooleanField, Case, Sum, Value, When
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns import control, stats
from campaigns.models import Campaign, CampaignResult, SegmentSnapshotMember
from ledger.models import Purchase

Metric = CampaignResult.Metric

METHOD = _(
    "Treated members (the campaign's audience outside its control group) are compared with the "
    "control group, which got nothing. Per-member means (purchases, revenue, points) use "
    "Welch's t-test: the absolute lift's 95 % interval from Student's t with the "
    "Welch–Satterthwaite degrees of freedom and a two-sided p-value. Shares of members "
    "(conversion, redemption) use the two-proportion z-test for the p-value and the unpooled "
    "normal interval for the absolute lift. The relative lift (absolute lift ÷ control mean) "
    "has a delta-method interval. The sample-ratio check is a chi-square test (1 degree of "
    "freedom) of the observed split against the configured control share; a p-value below "
    "0.001 means the split is not what was configured and the results should not be trusted "
    "until the cause is found."
)


@dataclass(frozen=True)
class MetricResult:
    metric: str
    label: str
    kind: str  # "count" (reach: no lift), "mean" or "proportion"
    n_control: int
    n_treated: int
    control_total: float
    treated_total: float
    control_mean: float | None
    treated_mean: float | None
    absolute: float | None
    absolute_ci: tuple[float, float] | None
    relative: float | None
    relative_ci: tuple[float, float] | None
    p_value: float | None


@dataclass(frozen=True)
class WindowResult:
    window: str
    label: str
    starts_at: datetime
    ends_at: datetime
    metrics: list[MetricResult]


@dataclass(frozen=True)
class CampaignResults:
    campaign: Campaign
    computed_at: datetime | None
    windows: list[WindowResult]
    sample_ratio: stats.SampleRatio | None
    method: str

    @property
    def sample_ratio_mismatch(self) -> bool:
        """The warning the page shows: the split is not what the campaign configured."""
        return bool(self.sample_ratio and self.sample_ratio.mismatch)


def _kind(metric: str) -> str:
    if metric == Metric.REACH:
        return "count"
    return "proportion" if metric in CampaignResult.PROPORTIONS else "mean"


def _metric(row: CampaignResult) -> MetricResult:
    kind = _kind(row.metric)
    lift = None
    if kind == "mean":
        lift = stats.mean_lift(
            stats.MeanGroup(row.control_n, row.control_sum, row.control_sum_of_squares),
            stats.MeanGroup(row.treated_n, row.treated_sum, row.treated_sum_of_squares),
        )
    elif kind == "proportion":
        lift = stats.proportion_lift(
            stats.ProportionGroup(row.control_n, int(row.control_sum)),
            stats.ProportionGroup(row.treated_n, int(row.treated_sum)),
        )
    control_mean = float(row.control_sum) / row.control_n if row.control_n else None
    treated_mean = float(row.treated_sum) / row.treated_n if row.treated_n else None
    return MetricResult(
        metric=row.metric,
        label=str(row.get_metric_display()),
        kind=kind,
        n_control=row.control_n,
        n_treated=row.treated_n,
        control_total=float(row.control_sum),
        treated_total=float(row.treated_sum),
        control_mean=control_mean,
        treated_mean=treated_mean,
        absolute=lift.absolute if lift else None,
        absolute_ci=lift.absolute_ci if lift else None,
        relative=lift.relative if lift else None,
        relative_ci=lift.relative_ci if lift else None,
        p_value=lift.p_value if lift else None,
    )


def campaign_results(campaign: Campaign) -> CampaignResults:
    """The stored results with their lifts. Empty windows until the first refresh."""
    rows = list(CampaignResult.objects.filter(campaign=campaign))
    order = {metric: i for i, metric in enumerate(Metric.values)}
    windows = []
    for window in CampaignResult.Window:
        in_window = sorted((r for r in rows if r.window == window), key=lambda r: order[r.metric])
        if not in_window:
            continue
        windows.append(
            WindowResult(
                window=window.value,
                label=str(window.label),
                starts_at=in_window[0].starts_at,
                ends_at=in_window[0].ends_at,
                metrics=[_metric(r) for r in in_window],
            )
        )
    sample_ratio = None
    share = campaign.control_basis_points / control.BUCKETS
    reach = next(
        (r for r in rows if r.window == CampaignResult.Window.CAMPAIGN and r.metric == "reach"),
        None,
    )
    if reach is not None and 0 < share < 1:
        sample_ratio = stats.sample_ratio_mismatch(reach.control_n, reach.treated_n, share)
    return CampaignResults(
        campaign=campaign,
        computed_at=max((r.computed_at for r in rows), default=None),
        windows=windows,
        sample_ratio=sample_ratio,
        method=str(METHOD),
    )


def campaigns_lifts(
    campaigns: list[Campaign], *, metrics: tuple[str, ...]
) -> dict[int, dict[str, MetricResult]]:
    """The stored results of `campaigns` (their "during the campaign" window) for `metrics`,
    with lifts: campaign id → metric → result. One query for all of them (the dashboard)."""
    rows = CampaignResult.objects.filter(
        campaign__in=[c.pk for c in campaigns],
        window=CampaignResult.Window.CAMPAIGN,
        metric__in=metrics,
    )
    found: dict[int, dict[str, MetricResult]] = {c.pk: {} for c in campaigns}
    for row in rows:
        found[row.campaign_id][row.metric] = _metric(row)
    return found


# -- the results page's chart ---------------------------------------------------------------------


@dataclass(frozen=True)
class DaySpend:
    day: date
    treated: Decimal
    control: Decimal


def campaign_spend_by_day(campaign: Campaign, *, now: datetime | None = None) -> list[DaySpend]:
    """What the campaign's treated and control members spent per day of the campaign's window
    (its start to its end, or to now while it runs), in the programme's time zone: recorded
    purchases in LOYALTY_CURRENCY, gross, as the stored revenue metric counts them.

    One grouped query over the audience's purchases (by day and control flag, the campaign's own
    bucket arithmetic in SQL); every day of the window is in the answer, days without purchases
    with 0. [] for a campaign that has not started (no audience).
    """
    if campaign.audience_id is None or campaign.starts_at is None:
        return []
    now = now or timezone.now()
    end = min(campaign.ends_at, now) if campaign.ends_at else now
    if end <= campaign.starts_at:
        return []
    zone = timezone.get_default_timezone()
    rows = (
        Purchase.objects.filter(
            member_id__in=SegmentSnapshotMember.objects.filter(
                snapshot_id=campaign.audience_id
            ).values("member_id"),
            status=Purchase.Status.RECORDED,
            currency=settings.LOYALTY_CURRENCY,
            occurred_at__gte=campaign.starts_at,
            occurred_at__lt=end,
        )
        .annotate(
            day=TruncDate("occurred_at", tzinfo=zone),
            in_control=Case(
                When(campaign.in_control_q("member_id"), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
        )
        .values("day", "in_control")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    spent: dict[tuple[date, bool], Decimal] = {
        (row["day"], row["in_control"]): Decimal(row["total"] or 0) for row in rows
    }
    first = timezone.localtime(campaign.starts_at, zone).date()
    last = timezone.localtime(end - timedelta(microseconds=1), zone).date()
    days = []
    day = first
    while day <= last:
        days.append(
            DaySpend(
                day=day,
                treated=spent.get((day, False), Decimal(0)),
                control=spent.get((day, True), Decimal(0)),
            )
        )
        day += timedelta(days=1)
    return days


def cumulative_per_member(
    days: list[DaySpend], *, treated_n: int, control_n: int
) -> list[tuple[date, float | None, float | None]]:
    """(day, treated, control): the spend per member of each group up to and including the day
    (None for a group without members)."""
    treated_total = control_total = Decimal(0)
    series = []
    for spend in days:
        treated_total += spend.treated
        control_total += spend.control
        series.append(
            (
                spend.day,
                float(treated_total / treated_n) if treated_n else None,
                float(control_total / control_n) if control_n else None,
            )
        )
    return series
