"""What the dashboard shows to whom, as data: each figure, chart, panel and work queue names
the permission that shows it, and the page shows a part only to a user who holds it.

The permissions are the roles' own view permissions (loyalty_site/roles.py): members figures
to those who may see members (Marketing, Customer service), points and liability to those who
see lots (Finance), top rewards to those who see the catalogue, campaign lifts to those who see
campaign results and NPS to those who manage the engagement kinds that ask for it (Marketing),
each work queue to those who may work it. The Administrator holds them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.urls import reverse
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns.models import Campaign, CampaignResult, EngagementEvent, PurchaseReview
from campaigns.results import campaigns_lifts
from ledger.models import AdjustmentRequest
from loyalty_site.dashboard.periods import PeriodFigures, Totals, top_rewards

MEMBERS = "members.view_member"
POINTS = "ledger.view_lot"
REWARDS = "rewards.view_reward"
CAMPAIGNS = "campaigns.view_campaignresult"
NPS = "campaigns.view_engagementkind"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    permission: str
    kind: str = "count"  # count, money, percent (a rate: its change is in points), score
    # A stock is read at the period's end; its "previous" is the previous period's end.
    stock: bool = False


FIGURES = [
    Figure("active_members_30d", gettext_lazy("Active members (30 days)"), MEMBERS, stock=True),
    Figure("enrolments", gettext_lazy("Enrolments"), MEMBERS),
    Figure("purchases", gettext_lazy("Purchases"), MEMBERS),
    Figure("revenue", gettext_lazy("Revenue"), MEMBERS, kind="money"),
    Figure("points_issued", gettext_lazy("Points issued"), POINTS),
    Figure("points_redeemed", gettext_lazy("Points redeemed"), POINTS),
    Figure("points_expired", gettext_lazy("Points expired"), POINTS),
    Figure("points_adjusted", gettext_lazy("Points adjusted (net)"), POINTS),
    Figure("redemption_rate", gettext_lazy("Redemption rate"), POINTS, kind="percent"),
    Figure("points_outstanding", gettext_lazy("Outstanding points"), POINTS, stock=True),
    Figure("members_in_debt", gettext_lazy("Members in debt"), POINTS, stock=True),
    Figure("redemptions", gettext_lazy("Redemptions"), REWARDS),
    Figure("nps", gettext_lazy("NPS"), NPS, kind="score"),
]

DASH = "–"


def _rounded(value, places: int = 1) -> str:
    # number_format cuts digits off (49.99 → "49.9"): round first.
    return number_format(round(float(value), places), places)


def _value(totals: Totals, key: str):
    if key == "redemption_rate":
        return totals.redemption_rate
    if key == "nps":
        return totals.nps
    return totals[key]


def value_text(value, kind: str) -> str:
    if value is None:
        return DASH
    if kind == "money":
        return f"{settings.LOYALTY_CURRENCY} {number_format(value, 2, force_grouping=True)}"
    if kind == "percent":
        return f"{_rounded(value)} %"
    if kind == "score":
        return _rounded(value, 0)
    return number_format(value, 0, force_grouping=True)


def change(current, previous, kind: str) -> dict:
    """The change against the previous period: ▲/▼ with a percentage (for a rate or a score,
    the difference in points); "–" when there is nothing to compare with (previous 0 or none)."""
    if current is None or previous is None:
        return {"text": DASH, "direction": ""}
    if kind in ("percent", "score"):
        difference = float(current) - float(previous)
        unit = _("pt")
        text = f"{_rounded(abs(difference))} {unit}"
    else:
        if not previous:
            return {"text": DASH, "direction": ""}
        difference = float(current - previous) / abs(float(previous)) * 100
        text = f"{_rounded(abs(difference))} %"
    if difference > 0:
        return {"text": f"▲ {text}", "direction": "up"}
    if difference < 0:
        return {"text": f"▼ {text}", "direction": "down"}
    return {"text": f"{text}", "direction": ""}


def figures_for(user, figures: PeriodFigures) -> list[dict]:
    shown = []
    for figure in FIGURES:
        if not user.has_perm(figure.permission):
            continue
        current = _value(figures.current, figure.key)
        previous = _value(figures.before, figure.key)
        if not figures.before.days_with_rows:
            previous = None
        shown.append(
            {
                "key": figure.key,
                "kind": figure.kind,
                "label": figure.label,
                "value": value_text(current, figure.kind),
                "previous": value_text(previous, figure.kind),
                "change": change(current, previous, figure.kind),
            }
        )
    return shown


def point_value(outstanding: int) -> str | None:
    """The money value of `outstanding` points, when a value per point is set."""
    value = getattr(settings, "LOYALTY_POINT_VALUE", None)
    if not value:
        return None
    return value_text(Decimal(outstanding) * Decimal(value), "money")


# --- charts: a day per point up to a month, then weeks, then months -----------------------


def _bucket(day: date, size: str) -> date:
    if size == "week":
        return day - timedelta(days=day.weekday())
    if size == "month":
        return day.replace(day=1)
    return day


def _bucket_size(days: int) -> str:
    return "day" if days <= 31 else "week" if days <= 120 else "month"


def buckets(series: list[dict], *, flows: list[str], stocks: list[str]) -> tuple[str, list]:
    """The series summed per day, week or month (flows) or read at its last day (stocks)."""
    size = _bucket_size(len(series))
    grouped: dict[date, dict] = {}
    for row in series:
        key = _bucket(row["day"], size)
        into = grouped.setdefault(key, {"start": key, **dict.fromkeys(flows, 0)})
        for name in flows:
            into[name] += row[name]
        for name in stocks:
            into[name] = row[name]
    return size, list(grouped.values())


def _label(start: date, size: str) -> str:
    if size == "month":
        return date_format(start, "M Y")
    return date_format(start, "j M")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    permission: str
    kind: str  # Chart.js type
    series: tuple[tuple[str, str, str], ...]  # (field, label, colour)
    stock: bool = False


COLOURS = {"green": "#0b6e4f", "red": "#a4161a", "amber": "#c98a00", "blue": "#2c5aa0"}

CHARTS = [
    Chart(
        "points",
        gettext_lazy("Points issued, redeemed and expired"),
        POINTS,
        "bar",
        (
            ("points_issued", gettext_lazy("Issued"), COLOURS["green"]),
            ("points_redeemed", gettext_lazy("Redeemed"), COLOURS["blue"]),
            ("points_expired", gettext_lazy("Expired"), COLOURS["red"]),
        ),
    ),
    Chart(
        "outstanding",
        gettext_lazy("Outstanding points"),
        POINTS,
        "line",
        (("points_outstanding", gettext_lazy("Outstanding points"), COLOURS["green"]),),
        stock=True,
    ),
    Chart(
        "enrolments",
        gettext_lazy("Enrolments"),
        MEMBERS,
        "bar",
        (("enrolments", gettext_lazy("Enrolments"), COLOURS["green"]),),
    ),
    Chart(
        "purchases",
        gettext_lazy("Purchases"),
        MEMBERS,
        "bar",
        (("purchases", gettext_lazy("Purchases"), COLOURS["blue"]),),
    ),
]

SIZE_LABELS = {
    "day": gettext_lazy("per day"),
    "week": gettext_lazy("per week (from Monday)"),
    "month": gettext_lazy("per month"),
}


def charts_for(user, figures: PeriodFigures) -> list[dict]:
    shown = []
    for chart in CHARTS:
        if not user.has_perm(chart.permission):
            continue
        fields = [name for name, _label_text, _colour in chart.series]
        size, rows = buckets(
            figures.series,
            flows=[] if chart.stock else fields,
            stocks=fields if chart.stock else [],
        )
        labels = [_label(row["start"], size) for row in rows]
        config = {
            "type": chart.kind,
            "data": {
                "labels": labels,
                "datasets": [
                    {
                        "label": str(label),
                        "data": [row[name] for row in rows],
                        "backgroundColor": colour,
                        "borderColor": colour,
                    }
                    for name, label, colour in chart.series
                ],
            },
            "options": {"scales": {"y": {"beginAtZero": not chart.stock}}},
        }
        shown.append(
            {
                "id": f"chart-{chart.key}",
                "title": chart.title,
                "size": SIZE_LABELS[size],
                "config": config,
                "columns": [label for _name, label, _colour in chart.series],
                "rows": [
                    {
                        "label": label,
                        "values": [
                            number_format(row[name], 0, force_grouping=True) for name in fields
                        ],
                    }
                    for label, row in zip(labels, rows, strict=True)
                ],
            }
        )
    return shown


# --- panels beside the figures -----------------------------------------------------------


@dataclass(frozen=True)
class Queue:
    label: str
    permission: str
    url_name: str
    count: Callable[[], int]


QUEUES = [
    Queue(
        gettext_lazy("Adjustments awaiting approval"),
        "ledger.view_adjustmentrequest",
        "approvals",
        lambda: AdjustmentRequest.objects.filter(status=AdjustmentRequest.Status.PENDING).count(),
    ),
    Queue(
        gettext_lazy("Purchases to review"),
        "campaigns.change_purchasereview",
        "reviews",
        lambda: PurchaseReview.objects.filter(status=PurchaseReview.Status.OPEN).count(),
    ),
    Queue(
        gettext_lazy("Engagement events to moderate"),
        "campaigns.change_engagementevent",
        "moderation",
        lambda: EngagementEvent.objects.filter(status=EngagementEvent.Status.PENDING).count(),
    ),
]


def queues_for(user) -> list[dict]:
    """Today's work: each queue the user may work, with its count now and its page."""
    return [
        {
            "label": queue.label,
            "count": queue.count(),
            "url": reverse(queue.url_name),
        }
        for queue in QUEUES
        if user.has_perm(queue.permission)
    ]


RUNNING_CAMPAIGNS_SHOWN = 10
LIFT_METRICS = (CampaignResult.Metric.CONVERSION, CampaignResult.Metric.REVENUE)


def _lift(result) -> dict | None:
    if result is None or result.relative is None:
        return None
    low, high = result.relative_ci or (None, None)
    return {
        "relative": f"{'+' if result.relative >= 0 else '−'}"
        f"{_rounded(abs(result.relative) * 100)} %",
        "interval": (
            f"{_rounded(low * 100)} % … {_rounded(high * 100)} %" if low is not None else DASH
        ),
        "direction": "up" if result.relative > 0 else "down" if result.relative < 0 else "",
    }


def campaigns_running() -> list[dict]:
    """Active campaigns (newest start first) with their stored lifts: never computed here."""
    campaigns = list(
        Campaign.objects.filter(status=Campaign.Status.ACTIVE).order_by("-starts_at", "-id")[
            :RUNNING_CAMPAIGNS_SHOWN
        ]
    )
    lifts = campaigns_lifts(campaigns, metrics=LIFT_METRICS)
    rows = []
    for campaign in campaigns:
        results = lifts[campaign.pk]
        conversion = results.get(CampaignResult.Metric.CONVERSION)
        rows.append(
            {
                "campaign": campaign,
                "url": reverse("campaign-results", args=[campaign.pk]),
                "treated": conversion.n_treated if conversion else None,
                "control": conversion.n_control if conversion else None,
                "conversion": _lift(conversion),
                "revenue": _lift(results.get(CampaignResult.Metric.REVENUE)),
            }
        )
    return rows


def dashboard_for(user, figures: PeriodFigures) -> dict:
    """Everything the page shows to `user` for the chosen period."""
    context = {
        "figures": figures_for(user, figures),
        "charts": charts_for(user, figures),
        "queues": queues_for(user),
        "show_points": user.has_perm(POINTS),
        "show_rewards": user.has_perm(REWARDS),
        "show_campaigns": user.has_perm(CAMPAIGNS),
        "show_nps": user.has_perm(NPS),
    }
    if context["show_points"]:
        context["outstanding_value"] = point_value(figures.current["points_outstanding"])
        context["finance_url"] = reverse("finance")
    if context["show_rewards"]:
        context["top_rewards"] = top_rewards(figures.period)
    if context["show_campaigns"]:
        context["campaigns"] = campaigns_running()
    if context["show_nps"]:
        current = figures.current
        context["nps"] = {
            "responses": current["nps_responses"],
            "promoters": current["nps_promoters"],
            "passives": current["nps_responses"]
            - current["nps_promoters"]
            - current["nps_detractors"],
            "detractors": current["nps_detractors"],
        }
    return context
