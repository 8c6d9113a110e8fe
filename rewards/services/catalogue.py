"""What a reward costs a member and whether they may have it; its stock."""

from datetime import datetime

from django.db.models import F

from members.models import Member
from rewards.errors import (
    LimitReached,
    OutOfStock,
    RewardNotOffered,
    RewardUnavailable,
)
from rewards.models import Redemption, Reward, RewardTierPrice

# Redemptions that count towards a reward's per-member limit: a cancelled or expired
# reservation gave the member nothing.
COUNTING_STATUSES = (Redemption.Status.RESERVED, Redemption.Status.CONFIRMED)


def reward_cost(*, reward: Reward, member: Member) -> int:
    """What this member pays for the reward: their tier's price if it has one."""
    tier_id = member.tier_id
    if tier_id is not None:
        price = (
            RewardTierPrice.objects.filter(reward=reward, tier_id=tier_id)
            .values_list("points", flat=True)
            .first()
        )
        if price is not None:
            return price
    return reward.points


def _reward_check(
    *, reward: Reward, member: Member, channel_kind: str, now: datetime, offered: bool = False
) -> None:
    if not reward.active or not reward.is_valid_at(now):
        raise RewardUnavailable()
    if reward.offer_only and not offered:
        raise RewardNotOffered()
    if channel_kind and reward.channels and channel_kind not in reward.channels:
        raise RewardUnavailable()
    tiers = set(reward.visible_tiers.values_list("pk", flat=True))
    if tiers and member.tier_id not in tiers:
        raise RewardUnavailable()


def _limit_check(*, reward: Reward, member: Member) -> None:
    if reward.limit_per_member is None:
        return
    taken = Redemption.objects.filter(
        member=member, reward=reward, status__in=COUNTING_STATUSES
    ).count()
    if taken >= reward.limit_per_member:
        raise LimitReached()


def _stock_take(*, reward: Reward) -> None:
    if reward.stock is None:
        return
    # Conditional decrement: PostgreSQL re-checks `stock > 0` after waiting for a concurrent
    # redeemer's row lock, so the last item goes to exactly one of them.
    taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
    if not taken:
        raise OutOfStock()


def _stock_return(*, reward_id: int) -> None:
    Reward.objects.filter(pk=reward_id, stock__isnull=False).update(stock=F("stock") + 1)
