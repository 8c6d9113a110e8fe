from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.translation import override

from rewards import services
from rewards.models import ChannelKind
from rewards.selectors import rewards_available, rewards_visible
from tests.rewards.factories import (
    RewardFactory,
    TierFactory,
    VoucherCodeFactory,
    VoucherRewardFactory,
)

pytestmark = pytest.mark.django_db


def names(rewards) -> list[str]:
    return [reward.name_en for reward in rewards]


def test_visibility_rules(member_with):
    silver, gold = TierFactory(name="Silver"), TierFactory(name="Gold")
    member = member_with(1000, tier=silver)
    now = timezone.now()
    RewardFactory(name_en="everyone")
    RewardFactory(name_en="inactive", active=False)
    RewardFactory(name_en="not yet", valid_from=now + timedelta(days=1))
    RewardFactory(name_en="over", valid_until=now - timedelta(days=1))
    RewardFactory(
        name_en="current", valid_from=now - timedelta(days=1), valid_until=now + timedelta(days=1)
    )
    RewardFactory(name_en="sold out", stock=0)
    RewardFactory(name_en="in stock", stock=3)
    RewardFactory(name_en="gold only").visible_tiers.set([gold])
    RewardFactory(name_en="silver and gold").visible_tiers.set([silver, gold])
    RewardFactory(name_en="app only", channels=[ChannelKind.APP])
    RewardFactory(name_en="till and app", channels=[ChannelKind.POS, ChannelKind.APP])
    VoucherRewardFactory(name_en="no codes")
    VoucherCodeFactory(reward=VoucherRewardFactory(name_en="with codes"))

    everywhere = set(names(rewards_available(member=member)))
    assert everywhere == {
        "everyone",
        "current",
        "in stock",
        "silver and gold",
        "app only",
        "till and app",
        "with codes",
    }
    at_till = set(names(rewards_available(member=member, channel_kind=ChannelKind.POS)))
    assert at_till == everywhere - {"app only"}
    # A member without a tier sees only rewards open to every tier.
    assert "silver and gold" not in names(rewards_available(member=member_with(1000)))


def test_only_affordable_rewards_at_the_members_price(member_with):
    gold = TierFactory(name="Gold")
    member = member_with(300, tier=gold)
    RewardFactory(name_en="cheap", points=100)
    RewardFactory(name_en="exactly", points=300)
    RewardFactory(name_en="too dear", points=301)
    RewardFactory(name_en="gold discount", points=500).tier_prices.create(tier=gold, points=250)

    rewards = rewards_available(member=member)

    assert set(names(rewards)) == {"cheap", "exactly", "gold discount"}
    assert {r.name_en: r.cost for r in rewards}["gold discount"] == 250
    assert "too dear" in names(rewards_visible(member=member))
    assert rewards_available(member=member_with(0)) == []


def test_held_points_are_not_spendable(member_with):
    member = member_with(300)
    reward = RewardFactory(name_en="tote bag", points=200)
    services.redemption_reserve(member=member, reward=RewardFactory(points=150))
    assert reward not in rewards_available(member=member)


def test_a_reached_limit_hides_the_reward(member_with):
    member = member_with(1000)
    reward = RewardFactory(points=100, limit_per_member=1)
    assert reward in rewards_available(member=member)
    services.redemption_redeem(member=member, reward=reward)
    assert reward not in rewards_available(member=member)
    assert reward in rewards_available(member=member_with(1000))


def test_blocked_members_see_nothing(member_with):
    RewardFactory(points=1)
    assert rewards_available(member=member_with(100, status="blocked")) == []


def test_ordered_by_sort_order_then_cost(member_with):
    member = member_with(1000)
    RewardFactory(name_en="b", sort_order=1, points=50)
    RewardFactory(name_en="a", sort_order=1, points=20)
    RewardFactory(name_en="first", sort_order=0, points=900)
    assert names(rewards_available(member=member)) == ["first", "a", "b"]


def test_name_follows_the_active_language(member_with):
    RewardFactory(name_en="Free coffee", name_nl="Gratis koffie", points=1)
    RewardFactory(name_en="Tote bag", name_nl="", points=2)
    member = member_with(10)
    with override("nl"):
        assert [r.name for r in rewards_available(member=member)] == ["Gratis koffie", "Tote bag"]
    with override("en"):
        assert [r.name for r in rewards_available(member=member)] == ["Free coffee", "Tote bag"]


def test_bounded_number_of_queries(member_with, django_assert_max_num_queries):
    silver, gold = TierFactory(), TierFactory()
    member = member_with(100_000, tier=gold)
    for index in range(40):
        reward = RewardFactory(points=100 + index, limit_per_member=5, stock=10)
        reward.visible_tiers.set([silver, gold] if index % 2 else [])
        reward.tier_prices.create(tier=gold, points=50 + index)
        VoucherCodeFactory(reward=VoucherRewardFactory(points=10 + index))
    services.redemption_redeem(member=member, reward=reward)

    with django_assert_max_num_queries(2):
        rewards = rewards_available(member=member, channel_kind=ChannelKind.POS)
        assert len(rewards) == 80
        assert all(r.name and r.cost for r in rewards)
