"""Campaign results: treated against control, per window, as sums the statistics work from.

`campaign_results_refresh` measures every member of the campaign's frozen audience over the
campaign's window (its start to its end, or to now while it runs) and the follow-up window
(``LOYALTY_CAMPAIGN_FOLLOW_UP_DAYS`` after its end, once it has ended), and stores, per group
(control or treated: the campaign's own bucket arithmetic in SQL, `campaigns.control`), window
and metric, n, Σx and Σx² in `CampaignResult`. One aggregate query does it: per member, a few
correlated subqueries over indexed columns (purchases by member and time, ledger entries by
account, redemptions by member); around them, one GROUP BY over the control flag. No member list
passes through Python, whatever the audience's size.

The metrics, per member of a group:
- reach: the members in the group; for a message campaign, the messages delivered to them
  (`CampaignMessage` sent in the window);
- conversion: whether they made a recorded purchase in the window;
- purchases and revenue: their recorded purchases and spend in `LOYALTY_CURRENCY` (gross: a
  later return is not taken off);
- points: points earned (earn entries) in the window;
- redemption: whether they confirmed a redemption in the window; for an offer campaign also
  whether they redeemed one of its offers' rewards (`offer_redemption`).

Safe to run twice or at the same time: the writes replace the campaign's rows under its row lock,
and the measuring query runs before that lock is taken.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    Case,
    DecimalField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignMessage,
    CampaignOffer,
    CampaignResult,
    SegmentSnapshotMember,
)
from ledger.models import Entry, Purchase
from rewards.models import Redemption

Metric = CampaignResult.Metric
Window = CampaignResult.Window

_MONEY = DecimalField(max_digits=30, decimal_places=4)


def _windows(campaign: Campaign, now: datetime) -> list[tuple[str, datetime, datetime]]:
    start = campaign.starts_at
    end = min(campaign.ends_at, now) if campaign.ends_at else now
    windows = [(Window.CAMPAIGN, start, max(start, end))]
    if campaign.ends_at is not None and campaign.ends_at < now:
        follow_up_end = campaign.ends_at + timedelta(days=settings.LOYALTY_CAMPAIGN_FOLLOW_UP_DAYS)
        windows.append((Window.FOLLOW_UP, campaign.ends_at, min(follow_up_end, now)))
    return windows


def _total(queryset, field: str, output_field):
    """A correlated scalar subquery: `field` summed (or counted) over `queryset`, 0 if none."""
    function = "COUNT" if field == "pk" else "SUM"
    zero = Value(Decimal(0) if isinstance(output_field, DecimalField) else 0)
    return Coalesce(
        Subquery(
            queryset.order_by()
            .annotate(total=Func(F(field), function=function, output_field=output_field))
            .values("total")[:1],
            output_field=output_field,
        ),
        zero,
        output_field=output_field,
    )


def _flag(condition) -> Case:
    return Case(When(condition, then=Value(1)), default=Value(0), output_field=IntegerField())


def _measures(campaign: Campaign, windows) -> dict[str, object]:
    """The per-member annotations, named `<metric>_<window>`."""
    member = OuterRef("member_id")
    offer_rewards = CampaignOffer.objects.filter(campaign=campaign).values("reward_id")
    annotations = {}
    for window, start, end in windows:
        purchases = Purchase.objects.filter(
            member_id=member,
            status=Purchase.Status.RECORDED,
            occurred_at__gte=start,
            occurred_at__lt=end,
        )
        redemptions = Redemption.objects.filter(
            member_id=member,
            status=Redemption.Status.CONFIRMED,
            confirmed_at__gte=start,
            confirmed_at__lt=end,
        )
        annotations[f"purchases_{window}"] = _total(purchases, "pk", IntegerField())
        annotations[f"revenue_{window}"] = _total(
            purchases.filter(currency=settings.LOYALTY_CURRENCY), "amount", _MONEY
        )
        annotations[f"points_{window}"] = _total(
            Entry.objects.filter(
                account__member_id=member,
                kind=Entry.Kind.EARN,
                created_at__gte=start,
                created_at__lt=end,
            ),
            "amount",
            IntegerField(),
        )
        annotations[f"redemption_{window}"] = _flag(Exists(redemptions))
        annotations[f"offer_redemption_{window}"] = _flag(
            Exists(redemptions.filter(reward_id__in=offer_rewards))
        )
        if campaign.kind == Campaign.Kind.MESSAGE:
            # Messages delivered to the member in the window (the control group gets none).
            annotations[f"reach_{window}"] = _total(
                CampaignMessage.objects.filter(
                    campaign=campaign,
                    member_id=member,
                    status=CampaignMessage.Status.SENT,
                    sent_at__gte=start,
                    sent_at__lt=end,
                ),
                "pk",
                IntegerField(),
            )
    return annotations


def _summaries(campaign: Campaign, windows) -> dict[tuple[str, str, bool], tuple]:
    """(window, metric, in_control) → (n, Σx, Σx²), from one aggregate query."""
    annotations = _measures(campaign, windows)
    per_member = (
        SegmentSnapshotMember.objects.filter(snapshot_id=campaign.audience_id)
        .annotate(in_control=_flag(campaign.in_control_q("member_id")), **annotations)
        .values_list("in_control", *annotations)
        .order_by()
    )
    select, params = per_member.query.sql_with_params()
    quote = connection.ops.quote_name
    columns = ["COUNT(*)"]
    for name in annotations:
        column = f"m.{quote(name)}"
        columns += [f"SUM({column})", f"SUM({column} * {column})"]
        if name.startswith("purchases_"):
            columns.append(f"SUM(CASE WHEN {column} > 0 THEN 1 ELSE 0 END)")
    sql = (
        f"SELECT m.{quote('in_control')}, {', '.join(columns)} "  # noqa: S608 - names are ours
        f"FROM ({select}) m GROUP BY m.{quote('in_control')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()

    summaries = {}
    for row in rows:
        in_control, n, values = bool(row[0]), int(row[1]), iter(row[2:])
        for name in annotations:
            metric, window = _split(name)
            total, squares = _number(next(values)), _number(next(values))
            summaries[window, metric, in_control] = (n, total, squares)
            if metric == Metric.PURCHASES:
                converted = _number(next(values))
                summaries[window, Metric.CONVERSION, in_control] = (n, converted, converted)
        for window, _start, _end in windows:
            # Without messages, a group's reach is its members.
            summaries.setdefault((window, Metric.REACH, in_control), (n, Decimal(n), Decimal(n)))
    return summaries


def _split(name: str) -> tuple[str, str]:
    for window in Window.values:
        if name.endswith(f"_{window}"):
            return name[: -len(window) - 1], window
    raise ValueError(name)


def _number(value) -> Decimal:
    # PostgreSQL answers Decimal (or int); SQLite may answer float or str for the money sums.
    return Decimal(str(value)) if value is not None else Decimal(0)


def campaign_results_refresh(
    *, campaign: Campaign, now: datetime | None = None
) -> list[CampaignResult]:
    """Measure the campaign's audience now and replace its stored results. A campaign that has
    not started (no audience yet) has none: nothing is written and [] returned."""
    now = now or timezone.now()
    if campaign.audience_id is None or campaign.starts_at is None or campaign.starts_at > now:
        return []
    windows = _windows(campaign, now)
    # Measured before the lock: a long query must not hold up the campaign's transitions.
    summaries = _summaries(campaign, windows)
    metrics = [m for m in Metric.values if m != Metric.OFFER_REDEMPTION]
    if campaign.kind == Campaign.Kind.OFFER:
        metrics.append(Metric.OFFER_REDEMPTION)
    empty = (0, Decimal(0), Decimal(0))
    with transaction.atomic():
        # Two refreshes of one campaign take turns here; the later one's rows stand.
        Campaign.objects.select_for_update(no_key=True).filter(pk=campaign.pk).first()
        CampaignResult.objects.filter(campaign=campaign).delete()
        rows = []
        for window, start, end in windows:
            for metric in metrics:
                control = summaries.get((window, metric, True), empty)
                treated = summaries.get((window, metric, False), empty)
                rows.append(
                    CampaignResult(
                        campaign=campaign,
                        window=window,
                        metric=metric,
                        starts_at=start,
                        ends_at=end,
                        control_n=control[0],
                        control_sum=control[1],
                        control_sum_of_squares=control[2],
                        treated_n=treated[0],
                        treated_sum=treated[1],
                        treated_sum_of_squares=treated[2],
                        computed_at=now,
                    )
                )
        return CampaignResult.objects.bulk_create(rows)


def campaigns_results_due(*, now: datetime | None = None) -> list[int]:
    """Campaigns whose results may still change: running ones (active or paused), and ended
    ones until a refresh has seen their whole follow-up window."""
    now = now or timezone.now()
    follow_up = timedelta(days=settings.LOYALTY_CAMPAIGN_FOLLOW_UP_DAYS)
    final = CampaignResult.objects.filter(
        campaign_id=OuterRef("pk"),
        window=Window.FOLLOW_UP,
        ends_at__gte=OuterRef("ends_at") + follow_up,
    )
    return list(
        Campaign.objects.filter(audience__isnull=False, starts_at__lte=now)
        .filter(
            Q(status__in=[Campaign.Status.ACTIVE, Campaign.Status.PAUSED])
            | (Q(status=Campaign.Status.ENDED) & ~Exists(final))
        )
        .order_by("pk")
        .values_list("pk", flat=True)
    )
