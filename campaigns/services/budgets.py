"""A campaign's budget caps on the purchase path: read under lock, taken, and given back.

An earning campaign may cap the points its rules issue in all (`Campaign.budget_points`), in
money (`budget_money`, counted in whole points at the `point_value` frozen when it was scheduled:
`budget_money_points`) and per member
per period (`member_cap_points` over `member_cap_period`, in the programme's time zone). The
purchase path does three steps, inside its one transaction and in the lock order of
`campaigns.services.locks`:

1. `campaign_limits_lock`: which of the purchase's campaign rules may reach this member (one
   indexed query over the campaigns' frozen audiences; the control group is the engine's own
   arithmetic, no query), then, for the campaigns the member is treated by, the budgeted
   campaign rows locked by id (``SELECT ... FOR UPDATE``) and the member's usage rows (guarded by
   the member's lock, which serialises one member's purchases). What is left goes into the
   engine, which grants up to it: the purchase that meets the cap gets the remainder, the next
   ones nothing ("budget exhausted" in the explanation). A campaign that is no longer active on
   its locked row (paused a moment ago, the rule cache not yet refreshed) reaches nobody.
2. `campaign_budgets_take`: the points actually awarded, added by a conditional UPDATE
   (``SET points_spent = points_spent + n WHERE points_spent + n <= budget``) that must match
   its row, and the per-member usage row likewise. The lock makes the condition hold; the
   condition and the CHECK constraints on both tables refuse an overspend even from a path that
   forgot the lock.
3. `campaign_budgets_give_back` (a return): the share of the campaign's points that the return
   reverses goes back to the budget and to the member's usage of the purchase's period.

Campaigns without a budget are never locked: their purchases run side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from django.db.models import F, Q, Sum
from django.utils import timezone

from campaigns import control, engine, selectors
from campaigns.models import (
    Campaign,
    CampaignMemberUsage,
    EarningAward,
    EarningRule,
    SegmentSnapshotMember,
)
from campaigns.models.budgets import LIFETIME_START
from ledger.models import Purchase
from members.models import Member


class BudgetOverspent(RuntimeError):
    """A conditional UPDATE matched no row: the lock order was broken somewhere (a bug)."""


@dataclass
class CampaignLimits:
    """What the engine needs about the campaigns of one purchase (see module docstring)."""

    campaigns: frozenset[int] = frozenset()
    budget_left: dict[int, int] = field(default_factory=dict)
    member_left: dict[int, int] = field(default_factory=dict)
    # Capped campaigns: (period start, cap) of this purchase's period.
    periods: dict[int, tuple] = field(default_factory=dict)
    budgeted: frozenset[int] = frozenset()


def cap_period_start(period: str, at: datetime):
    """The local date the member cap's period containing `at` starts on (lifetime: one date)."""
    start = selectors.period_start(period, at)
    return LIFETIME_START if start is None else start.date()


def money_in_points(budget_money: Decimal | None, point_value: Decimal) -> int | None:
    """The whole points a money budget pays for at `point_value`; None: no money budget."""
    if budget_money is None or point_value <= 0:
        return None
    return int((budget_money / point_value).to_integral_value(ROUND_FLOOR))


def budget_left(
    *, budget_points: int | None, budget_money_points: int | None, points_spent: int
) -> int | None:
    """Points a campaign may still issue; None when it has no budget."""
    caps = [cap for cap in (budget_points, budget_money_points) if cap is not None]
    return max(min(caps) - points_spent, 0) if caps else None


def _treated(campaign: Campaign, member_id: int) -> bool:
    share = campaign.control_basis_points
    return not (share and control.bucket(member_id, campaign.salt) < share)


def campaign_limits_lock(
    *, member: Member, rules: list[EarningRule], at: datetime
) -> CampaignLimits:
    """Step 1: the member's campaigns among `rules`, budgeted ones locked. No campaign: no query."""
    by_audience = {
        rule.campaign.audience_id: rule.campaign
        for rule in rules
        if rule.campaign_id is not None and rule.campaign.audience_id is not None
    }
    if not by_audience:
        return CampaignLimits()
    # The (snapshot, member) unique index answers this: one index probe per active campaign.
    held = set(
        SegmentSnapshotMember.objects.filter(
            member_id=member.pk, snapshot_id__in=list(by_audience)
        ).values_list("snapshot_id", flat=True)
    )
    mine = {by_audience[s].pk: by_audience[s] for s in held}
    if not mine:
        return CampaignLimits()
    treated = {pk: c for pk, c in mine.items() if _treated(c, member.pk)}
    limits = CampaignLimits(campaigns=frozenset(mine))
    budgeted = sorted(pk for pk, c in treated.items() if c.budgeted)
    if budgeted:
        rows = (
            Campaign.objects.select_for_update()
            .filter(pk__in=budgeted)
            .order_by("pk")
            .values_list("pk", "status", "budget_points", "budget_money_points", "points_spent")
        )
        for pk, status, points, money_points, spent in rows:
            if status != Campaign.Status.ACTIVE:
                limits.campaigns -= {pk}
                continue
            limits.budget_left[pk] = budget_left(
                budget_points=points, budget_money_points=money_points, points_spent=spent
            )
        limits.budgeted = frozenset(limits.budget_left)
    capped = {
        pk: c
        for pk, c in treated.items()
        if c.member_cap_points is not None and pk in limits.campaigns
    }
    if capped:
        for pk, campaign in capped.items():
            limits.periods[pk] = (
                cap_period_start(campaign.member_cap_period, at),
                campaign.member_cap_points,
            )
        used = {
            (campaign_id, start): points
            for campaign_id, start, points in CampaignMemberUsage.objects.filter(
                member_id=member.pk, campaign_id__in=list(capped)
            ).values_list("campaign_id", "period_start", "points")
        }
        for pk, (start, cap) in limits.periods.items():
            limits.member_left[pk] = max(cap - used.get((pk, start), 0), 0)
    return limits


def member_facts_with(facts: engine.MemberFacts, limits: CampaignLimits) -> engine.MemberFacts:
    if not limits.campaigns:
        return facts
    return facts._replace(campaigns=limits.campaigns, campaign_left=limits.member_left)


def campaign_points(evaluation: engine.Evaluation, rules: list[EarningRule]) -> dict[int, int]:
    """Points the evaluation's awards gave per campaign (the tier line belongs to none)."""
    campaign_of = {rule.pk: rule.campaign_id for rule in rules if rule.campaign_id is not None}
    points: dict[int, int] = {}
    for award in evaluation.awards:
        campaign = campaign_of.get(award.rule_id)
        if campaign is not None and award.points > 0:
            points[campaign] = points.get(campaign, 0) + award.points
    return points


def _budget_room_q(points: int) -> Q:
    after = F("points_spent") + points
    return (Q(budget_points__isnull=True) | Q(budget_points__gte=after)) & (
        Q(budget_money_points__isnull=True) | Q(budget_money_points__gte=after)
    )


def campaign_budgets_take(
    *, member: Member, limits: CampaignLimits, points: dict[int, int]
) -> None:
    """Step 2: count what the campaigns gave against their budgets and the member's caps."""
    for campaign_id in sorted(points):
        n = points[campaign_id]
        if campaign_id in limits.budgeted:
            taken = (
                Campaign.objects.filter(pk=campaign_id)
                .filter(_budget_room_q(n))
                .update(points_spent=F("points_spent") + n)
            )
            if taken != 1:
                raise BudgetOverspent(f"campaign {campaign_id}: {n} points over budget")
        if campaign_id in limits.periods:
            start, cap = limits.periods[campaign_id]
            usage = CampaignMemberUsage.objects.filter(
                campaign_id=campaign_id, member_id=member.pk, period_start=start
            )
            # The member's lock serialises this member's purchases: no other writer of the row.
            if not usage.filter(points__lte=F("cap") - n).update(points=F("points") + n):
                if usage.exists():
                    raise BudgetOverspent(f"campaign {campaign_id}: member {member.pk} over cap")
                CampaignMemberUsage.objects.create(
                    campaign_id=campaign_id,
                    member_id=member.pk,
                    period_start=start,
                    points=n,
                    cap=cap,
                )


def campaign_budgets_give_back(
    *, purchase: Purchase, earned: int, reversed_before: int, reversed_after: int
) -> dict[int, int]:
    """Step 3: a return took the purchase's reversed points from `reversed_before` to
    `reversed_after` (of `earned`); give each campaign its share back. Returns campaign → points.

    The share is computed from the running totals, so partial returns give back exactly what
    the campaign issued once the purchase is fully returned, and never more.
    """
    if earned <= 0 or reversed_after <= reversed_before:
        return {}
    issued = dict(
        EarningAward.objects.filter(purchase=purchase, rule__campaign__isnull=False)
        .values_list("rule__campaign")
        .annotate(total=Sum("points"))
        .values_list("rule__campaign", "total")
    )
    if not issued:
        return {}
    given: dict[int, int] = {}
    campaigns = Campaign.objects.filter(pk__in=list(issued)).order_by("pk")
    for campaign in campaigns:
        total = issued[campaign.pk]
        back = total * reversed_after // earned - total * reversed_before // earned
        if back <= 0:
            continue
        given[campaign.pk] = back
        if campaign.budgeted:
            Campaign.objects.filter(pk=campaign.pk, points_spent__gte=back).update(
                points_spent=F("points_spent") - back
            )
        if campaign.member_cap_points is not None:
            start = cap_period_start(
                campaign.member_cap_period, timezone.localtime(purchase.occurred_at)
            )
            CampaignMemberUsage.objects.filter(
                campaign=campaign,
                member_id=purchase.member_id,
                period_start=start,
                points__gte=back,
            ).update(points=F("points") - back)
    return given
