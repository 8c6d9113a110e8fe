from datetime import timedelta

import pytest
from django.utils import timezone
from django.utils.translation import override

from rewards import services
from rewards.models import ChannelKind, Redemption
from rewards.selectors import (
    redemption_detail,
    redemption_history,
    redemptions_search,
    rewards_available,
    rewards_visible,
    shipments_search,
)
from tests.rewards.factories import (
    ProductRewardFactory,
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


# --- the shipping list and the redemption search (rewards/views.py, issue 14) ---


def _made(redemption, at):
    Redemption.objects.filter(pk=redemption.pk).update(created_at=at)
    redemption.refresh_from_db()
    return redemption


def test_shipments_to_ship_come_oldest_first_and_others_newest_first(member_with):
    product = ProductRewardFactory(points=10, stock=None)
    member = member_with(1000)
    now = timezone.now()
    old, new, sent = (
        _made(services.redemption_redeem(member=member, reward=product), now - timedelta(days=d))
        for d in (3, 1, 2)
    )
    services.redemption_redeem(member=member, reward=RewardFactory(points=10))  # ships nothing
    services.fulfilment_set(redemption=sent, status="shipped")

    assert [r.pk for r in shipments_search(status="to_ship", limit=10)] == [old.pk, new.pk]
    assert [r.pk for r in shipments_search(limit=10)] == [new.pk, sent.pk, old.pk]
    assert [r.pk for r in shipments_search(status="shipped", limit=10)] == [sent.pk]
    # Keyset: after a row, in the same order; the end is exclusive.
    after = (old.created_at, old.pk)
    assert [r.pk for r in shipments_search(status="to_ship", cursor=after, limit=10)] == [new.pk]
    assert [r.pk for r in shipments_search(end=new.created_at, limit=10)] == [sent.pk, old.pk]


def test_redemptions_search_narrows_by_each_filter_and_pages_by_keyset(member_with):
    voucher = VoucherRewardFactory(points=10)
    VoucherCodeFactory(reward=voucher, code="FIND-0001-CODE")
    VoucherCodeFactory(reward=voucher, code="FIND-0002-CODE")
    anna, bob = member_with(1000), member_with(1000)
    now = timezone.now()
    first = _made(services.redemption_redeem(member=anna, reward=voucher), now - timedelta(days=2))
    second = _made(services.redemption_reserve(member=bob, reward=voucher), now - timedelta(days=1))
    points = services.redemption_redeem(member=anna, points=5)

    def found(**kwargs):
        return [r.pk for r in redemptions_search(limit=10, **kwargs)]

    assert found() == [points.pk, second.pk, first.pk]
    assert found(member_ids=[anna.pk]) == [points.pk, first.pk]
    assert found(member_ids=[]) == []
    assert found(reward_id=voucher.pk) == [second.pk, first.pk]
    assert found(status="reserved") == [second.pk]
    assert found(code="FIND-0001-CODE") == [first.pk]
    assert found(code="FIND-0001") == []  # a code is matched whole
    assert found(start=now - timedelta(days=1, hours=1)) == [points.pk, second.pk]
    assert found(cursor=(second.created_at, second.pk)) == [first.pk]


def test_a_redemptions_history_is_what_staff_did_to_it(member_with, staff_user):
    agent = staff_user("Customer service")
    product = ProductRewardFactory(points=10, stock=None)
    member = member_with(1000)
    parcel = services.redemption_redeem(member=member, reward=product)
    other = services.redemption_redeem(member=member, reward=product)
    services.fulfilment_set(redemption=parcel, status="shipped", actor=agent, reason="sent")
    services.fulfilment_set(redemption=parcel, status="delivered", actor=agent, reason="arrived")
    services.fulfilment_set(redemption=other, status="shipped", actor=agent, reason="other")
    history = redemption_history(redemption=parcel)
    assert [(e.reason, e.details["to"]) for e in history] == [
        ("arrived", "delivered"),
        ("sent", "shipped"),
    ]
    assert redemption_detail(redemption_id=parcel.pk).reward == product
    assert redemption_detail(redemption_id=999_999) is None
