"""What a reward costs and who may have it; stock (rewards/services/catalogue.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.selectors import balance_summary
from rewards import services
from rewards.errors import (
    LimitReached,
    OutOfStock,
    RewardUnavailable,
)
from rewards.models import ChannelKind, Reward
from tests.rewards.factories import (
    RewardFactory,
    TierFactory,
)

pytestmark = pytest.mark.django_db


def available(member) -> int:
    return balance_summary(member=member)["available"]


def test_tier_price_applies_to_members_of_that_tier(member_with):
    gold = TierFactory(name="Gold")
    member = member_with(500, tier=gold)
    reward = RewardFactory(points=300)
    reward.tier_prices.create(tier=gold, points=150)

    redemption = services.redemption_redeem(member=member, reward=reward)

    assert redemption.points == 150
    assert available(member) == 350
    assert services.reward_cost(reward=reward, member=member_with(0)) == 300


@pytest.mark.parametrize(
    "change",
    [
        {"active": False},
        {"valid_from": timezone.now() + timedelta(days=1)},
        {"valid_until": timezone.now() - timedelta(seconds=1)},
        {"channels": [ChannelKind.APP]},
    ],
)
def test_a_reward_out_of_sight_cannot_be_redeemed(member_with, change):
    member = member_with(500)
    reward = RewardFactory(points=100, **change)
    with pytest.raises(RewardUnavailable) as caught:
        services.redemption_redeem(member=member, reward=reward, channel_kind=ChannelKind.POS)
    assert caught.value.code == "reward_unavailable"
    assert available(member) == 500


def test_tier_visibility_is_enforced_at_redemption(member_with):
    silver, gold = TierFactory(name="Silver"), TierFactory(name="Gold")
    reward = RewardFactory(points=100)
    reward.visible_tiers.set([gold])
    with pytest.raises(RewardUnavailable) as caught:
        services.redemption_redeem(member=member_with(500, tier=silver), reward=reward)
    assert caught.value.code == "reward_unavailable"
    with pytest.raises(RewardUnavailable) as caught:
        services.redemption_redeem(member=member_with(500), reward=reward)
    assert caught.value.code == "reward_unavailable"
    assert services.redemption_redeem(member=member_with(500, tier=gold), reward=reward)


def test_per_member_limit_counts_reserved_and_confirmed_but_not_cancelled(member_with):
    member = member_with(1000)
    reward = RewardFactory(points=100, limit_per_member=2)
    services.redemption_redeem(member=member, reward=reward)
    reservation = services.redemption_reserve(member=member, reward=reward)
    with pytest.raises(LimitReached) as caught:
        services.redemption_redeem(member=member, reward=reward)
    assert caught.value.code == "limit_reached"

    services.redemption_cancel(redemption=reservation)
    services.redemption_redeem(member=member, reward=reward)
    # Another member has their own allowance.
    services.redemption_redeem(member=member_with(100), reward=reward)
    assert available(member) == 800


def test_out_of_stock_is_refused(member_with):
    reward = RewardFactory(points=10, stock=1)
    services.redemption_redeem(member=member_with(100), reward=reward)
    member = member_with(100)
    with pytest.raises(OutOfStock) as caught:
        services.redemption_redeem(member=member, reward=reward)
    assert caught.value.code == "out_of_stock"
    assert available(member) == 100


def test_database_refuses_negative_stock():
    from django.db import IntegrityError, transaction

    reward = RewardFactory(stock=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reward.objects.filter(pk=reward.pk).update(stock=-1)
