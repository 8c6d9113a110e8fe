"""Personalised offers: which reward each active offer campaign shows a member, and why.

A member of an offer campaign's frozen audience who is not in its control group (nor in the
programme-wide holdout) is offered, per campaign, the first of the marketer's options
(`CampaignOffer`, highest priority first) whose rule matches the member's own purchase history:

- *most-bought category is X*: X is the category of the member's largest spend over the last
  ``LOYALTY_OFFER_HISTORY_DAYS`` (recorded purchases; ties go to the category first by name);
- *bought category X in the last N days*: a recorded purchase with a line in X within N days;
- *fallback*: always.

Two queries whatever the number of campaigns: one for the candidate options (the campaigns
that are active now and hold the member, with each reward's price for the member), and, only
when an option looks at history, one for the member's categories (spend over the history window
and the last time bought). The control split is the same arithmetic as in SQL
(`campaigns.control.bucket`), applied to the few candidates in Python.

Reads only: the channel API shows the result (`GET members/{id}/offers/`) and asks
`member_offered` before it lets a member redeem an offer-only reward.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import control
from campaigns.models import Campaign, CampaignOffer, SegmentSnapshotMember
from ledger.models import Purchase, PurchaseLine
from members.models import Member
from rewards.models import Redemption, Reward, RewardTierPrice
from rewards.services import COUNTING_STATUSES


@dataclass(frozen=True)
class Offer:
    """What one campaign offers one member: the reward (annotated with `cost`, the member's
    price), the option that matched and a sentence saying why, in the active language."""

    campaign: Campaign
    reward: Reward
    why: str
    option: CampaignOffer

    @property
    def valid_until(self) -> datetime | None:
        ends = [at for at in (self.campaign.ends_at, self.reward.valid_until) if at is not None]
        return min(ends) if ends else None


@dataclass(frozen=True)
class _History:
    top_category: str | None
    last_bought: dict[str, datetime]


def _candidates(*, member: Member, at: datetime):
    """The options of every offer campaign active at `at` whose audience holds the member, with
    rewards that can be had now (active, valid, in stock, visible to the member's tier, under the
    per-member limit): one query."""
    tier_links = Reward.visible_tiers.through.objects.filter(reward_id=OuterRef("reward_id"))
    cost = (
        Coalesce(
            Subquery(
                RewardTierPrice.objects.filter(
                    reward_id=OuterRef("reward_id"), tier_id=member.tier_id
                ).values("points")[:1],
                output_field=IntegerField(),
            ),
            F("reward__points"),
            output_field=IntegerField(),
        )
        if member.tier_id is not None
        else F("reward__points")
    )
    redeemed = Coalesce(
        Subquery(
            Redemption.objects.filter(
                reward_id=OuterRef("reward_id"), member=member, status__in=COUNTING_STATUSES
            )
            .order_by()
            .values("reward_id")
            .annotate(n=Count("pk"))
            .values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
        output_field=IntegerField(),
    )
    return (
        CampaignOffer.objects.filter(
            campaign__kind=Campaign.Kind.OFFER,
            campaign__status=Campaign.Status.ACTIVE,
            campaign__starts_at__lte=at,
            campaign__audience__isnull=False,
        )
        .filter(Q(campaign__ends_at__isnull=True) | Q(campaign__ends_at__gt=at))
        .filter(
            Exists(
                SegmentSnapshotMember.objects.filter(
                    snapshot_id=OuterRef("campaign__audience_id"), member_id=member.pk
                )
            )
        )
        .filter(reward__active=True)
        .filter(Q(reward__valid_from__isnull=True) | Q(reward__valid_from__lte=at))
        .filter(Q(reward__valid_until__isnull=True) | Q(reward__valid_until__gt=at))
        .filter(Q(reward__stock__isnull=True) | Q(reward__stock__gt=0))
        .filter(~Exists(tier_links) | Exists(tier_links.filter(tier_id=member.tier_id)))
        .annotate(reward_cost=cost, reward_redeemed=redeemed)
        .filter(
            Q(reward__limit_per_member__isnull=True)
            | Q(reward__limit_per_member__gt=F("reward_redeemed"))
        )
        .select_related("campaign", "reward")
        .order_by("campaign_id", "-priority", "id")
    )


def _history(*, member: Member, at: datetime) -> _History:
    """The member's categories: spend over the history window and when last bought (one query)."""
    since = at - timedelta(days=settings.LOYALTY_OFFER_HISTORY_DAYS)
    rows = (
        PurchaseLine.objects.filter(
            purchase__member=member,
            purchase__status=Purchase.Status.RECORDED,
            purchase__occurred_at__lte=at,
        )
        .exclude(category="")
        .values("category")
        .annotate(
            spend=Sum("amount", filter=Q(purchase__occurred_at__gte=since)),
            last=Max("purchase__occurred_at"),
        )
        .order_by("category")
    )
    top, top_spend = None, 0
    last_bought = {}
    for row in rows:
        last_bought[row["category"]] = row["last"]
        if row["spend"] is not None and row["spend"] > top_spend:
            top, top_spend = row["category"], row["spend"]
    return _History(top_category=top, last_bought=last_bought)


def _why(option: CampaignOffer, *, history: _History | None, at: datetime) -> str | None:
    """Why the option matches the member, or None when it does not."""
    if option.rule == CampaignOffer.Rule.FALLBACK:
        return _("An offer for you.")
    if option.rule == CampaignOffer.Rule.TOP_CATEGORY:
        if history.top_category == option.category:
            return _("You buy most in %(category)s.") % {"category": option.category}
        return None
    last = history.last_bought.get(option.category)
    if last is not None and last >= at - timedelta(days=option.days):
        return _("You bought in %(category)s in the last %(days)d days.") % {
            "category": option.category,
            "days": option.days,
        }
    return None


def _treated(member: Member, campaign: Campaign) -> bool:
    if control.bucket(member.pk, settings.LOYALTY_HOLDOUT_SALT) < (
        settings.LOYALTY_HOLDOUT_BASIS_POINTS
    ):
        return False
    return control.bucket(member.pk, campaign.salt) >= campaign.control_basis_points


def member_offers(
    *, member: Member, at: datetime | None = None, channel_kind: str | None = None
) -> list[Offer]:
    """The offers this member sees now: at most one per active offer campaign, chosen from their
    own history among the marketer's options. Nobody in a control group or the holdout, and no
    member who is not active, gets any. `channel_kind` leaves out rewards not offered there."""
    if member.status != Member.Status.ACTIVE:
        return []
    at = at or timezone.now()
    by_campaign: dict[int, list[CampaignOffer]] = {}
    for option in _candidates(member=member, at=at):
        reward = option.reward
        if channel_kind and reward.channels and channel_kind not in reward.channels:
            continue
        by_campaign.setdefault(option.campaign_id, []).append(option)
    options = [
        option_list
        for option_list in by_campaign.values()
        if _treated(member, option_list[0].campaign)
    ]
    history = None
    if any(o.rule != CampaignOffer.Rule.FALLBACK for option_list in options for o in option_list):
        history = _history(member=member, at=at)
    offers = []
    for option_list in options:
        for option in option_list:
            why = _why(option, history=history, at=at)
            if why is not None:
                option.reward.cost = option.reward_cost
                offers.append(
                    Offer(campaign=option.campaign, reward=option.reward, why=why, option=option)
                )
                break
    offers.sort(
        key=lambda offer: (
            -offer.option.priority,
            offer.valid_until or datetime.max.replace(tzinfo=UTC),
            offer.campaign.pk,
        )
    )
    return offers


def member_offered(
    *, member: Member, reward: Reward, at: datetime | None = None, channel_kind: str | None = None
) -> bool:
    """Whether an active offer campaign offers `reward` to `member` now (what the redemption
    flow asks before it lets the member redeem an offer-only reward)."""
    return any(
        offer.reward.pk == reward.pk
        for offer in member_offers(member=member, at=at, channel_kind=channel_kind)
    )
