"""Personalised offers (issue 13, item 2): per member, from their own purchase history, among the
options the marketer gave; never for the control group, the holdout or outside the period."""

from datetime import timedelta

import pytest

from campaigns.models import Campaign, CampaignOffer
from campaigns.offers import member_offered, member_offers
from members.models import Member
from rewards.models import RewardTierPrice
from tests.campaigns.offering import active_campaign, buy, salt_splitting
from tests.campaigns.purchasing import T0
from tests.factories import MemberFactory
from tests.rewards.factories import RewardFactory, TierFactory

pytestmark = pytest.mark.django_db

NOW = T0 + timedelta(days=1)


def coffee_tea_campaign(**kwargs):
    """Coffee lovers get the coffee offer, tea lovers the tea offer, everyone else a fallback."""
    campaign = active_campaign(**kwargs)
    coffee, tea, fallback = RewardFactory(), RewardFactory(), RewardFactory()
    CampaignOffer.objects.create(
        campaign=campaign, reward=coffee, rule="top_category", category="coffee", priority=10
    )
    CampaignOffer.objects.create(
        campaign=campaign, reward=tea, rule="top_category", category="tea", priority=10
    )
    CampaignOffer.objects.create(campaign=campaign, reward=fallback, rule="fallback")
    return campaign, coffee, tea, fallback


def shop(member, name, **spend):
    buy(
        member, f"{name}-{member.pk}", at=T0 - timedelta(days=3),
        lines=[{"category": category, "amount": amount} for category, amount in spend.items()],
    )  # fmt: skip


def offered(member, at=NOW):
    return [(offer.campaign.pk, offer.reward.pk) for offer in member_offers(member=member, at=at)]


def test_each_member_gets_their_most_bought_categorys_offer_else_the_fallback():
    coffee_buyer, tea_buyer, newcomer = MemberFactory(), MemberFactory(), MemberFactory()
    campaign, coffee, tea, fallback = coffee_tea_campaign()
    # Most-bought by spend, not by number of lines: one big tea line beats two coffees.
    shop(coffee_buyer, "a", coffee="30.00", tea="5.00")
    shop(tea_buyer, "b", coffee="9.00", tea="25.00")
    buy(tea_buyer, "b2", at=T0 - timedelta(days=2), lines=[{"category": "coffee", "amount": 9}])

    assert offered(coffee_buyer) == [(campaign.pk, coffee.pk)]
    assert offered(tea_buyer) == [(campaign.pk, tea.pk)]
    assert offered(newcomer) == [(campaign.pk, fallback.pk)]
    [offer] = member_offers(member=coffee_buyer, at=NOW)
    assert "coffee" in offer.why
    assert offer.option.rule == "top_category"
    assert offer.valid_until == campaign.ends_at


def test_history_outside_the_window_does_not_make_a_category_most_bought(settings):
    settings.LOYALTY_OFFER_HISTORY_DAYS = 30
    member = MemberFactory()
    campaign, coffee, tea, fallback = coffee_tea_campaign()
    buy(member, "old", at=NOW - timedelta(days=40), lines=[{"category": "coffee", "amount": 90}])
    buy(member, "new", at=NOW - timedelta(days=5), lines=[{"category": "tea", "amount": 3}])
    assert offered(member) == [(campaign.pk, tea.pk)]


def test_bought_in_the_last_n_days():
    member = MemberFactory()
    campaign = active_campaign(starts_at=NOW - timedelta(days=20))
    recent, fallback = RewardFactory(), RewardFactory()
    CampaignOffer.objects.create(
        campaign=campaign, reward=recent, rule="bought_category", category="wine", days=7,
        priority=5,
    )  # fmt: skip
    CampaignOffer.objects.create(campaign=campaign, reward=fallback, rule="fallback")
    buy(member, "w", at=NOW - timedelta(days=10), lines=[{"category": "wine", "amount": 12}])
    assert offered(member) == [(campaign.pk, fallback.pk)]
    buy(member, "w2", at=NOW - timedelta(days=6), lines=[{"category": "wine", "amount": 12}])
    assert offered(member) == [(campaign.pk, recent.pk)]
    # What they buy after `at` does not count at `at`.
    assert offered(member, at=NOW - timedelta(days=11)) == [(campaign.pk, fallback.pk)]


def test_the_highest_priority_match_wins_and_without_fallback_no_match_means_no_offer():
    member = MemberFactory()
    shop(member, "a", coffee="30.00")
    campaign = active_campaign()
    low, high = RewardFactory(), RewardFactory()
    CampaignOffer.objects.create(
        campaign=campaign, reward=low, rule="bought_category", category="coffee", days=30
    )
    CampaignOffer.objects.create(
        campaign=campaign, reward=high, rule="top_category", category="coffee", priority=1
    )
    assert offered(member) == [(campaign.pk, high.pk)]
    assert offered(MemberFactory()) == []


def test_control_group_and_holdout_members_get_none(settings):
    treated, held_out = MemberFactory(), MemberFactory()
    salt = salt_splitting([treated], [held_out])
    campaign, _coffee, _tea, fallback = coffee_tea_campaign(control_basis_points=5000, salt=salt)
    assert offered(treated) == [(campaign.pk, fallback.pk)]
    assert offered(held_out) == []
    assert not member_offered(member=held_out, reward=fallback, at=NOW)
    # The programme-wide holdout: no campaign reaches its members.
    settings.LOYALTY_HOLDOUT_BASIS_POINTS = 5000
    settings.LOYALTY_HOLDOUT_SALT = salt
    assert offered(treated) == [(campaign.pk, fallback.pk)]
    settings.LOYALTY_HOLDOUT_SALT = salt_splitting([held_out], [treated])
    assert offered(treated) == []


def test_outside_the_period_or_not_active_or_not_in_the_audience_none():
    member = MemberFactory()
    campaign, *_rewards = coffee_tea_campaign()
    assert offered(member, at=campaign.starts_at - timedelta(seconds=1)) == []
    assert offered(member, at=campaign.ends_at) == []
    for status in ("paused", "ended", "scheduled"):
        Campaign.objects.filter(pk=campaign.pk).update(status=status)
        assert offered(member) == [], status
    Campaign.objects.filter(pk=campaign.pk).update(status="active", kind="earning")
    assert offered(member) == []
    Campaign.objects.filter(pk=campaign.pk).update(kind="offer")
    assert len(offered(member)) == 1
    # Enrolled after the audience was frozen: not in it.
    assert offered(MemberFactory()) == []
    Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)
    member.refresh_from_db()
    assert offered(member) == []


def test_an_option_whose_reward_cannot_be_had_gives_way_to_the_next():
    member = MemberFactory()
    shop(member, "a", coffee="30.00")
    campaign, coffee, _tea, fallback = coffee_tea_campaign()
    coffee.stock = 0
    coffee.save()
    assert offered(member) == [(campaign.pk, fallback.pk)]
    coffee.stock, coffee.valid_until = 5, NOW - timedelta(hours=1)
    coffee.save()
    assert offered(member) == [(campaign.pk, fallback.pk)]
    coffee.valid_until, coffee.channels = None, ["webshop"]
    coffee.save()
    assert offered(member) == [(campaign.pk, coffee.pk)]
    assert [o.reward.pk for o in member_offers(member=member, at=NOW, channel_kind="pos")] == [
        fallback.pk
    ]


def test_offers_of_several_campaigns_in_two_queries_with_the_members_tier_price(
    django_assert_num_queries,
):
    gold = TierFactory()
    member = MemberFactory(tier=gold)
    shop(member, "a", tea="30.00")
    first, _coffee, tea, _fallback = coffee_tea_campaign()
    second, *_ = coffee_tea_campaign()
    RewardTierPrice.objects.create(reward=tea, tier=gold, points=40)
    with django_assert_num_queries(2):
        offers = member_offers(member=member, at=NOW)
    assert sorted(offer.campaign.pk for offer in offers) == [first.pk, second.pk]
    assert {offer.reward.pk: offer.reward.cost for offer in offers}[tea.pk] == 40
    # Only fallbacks: the history is not read at all.
    CampaignOffer.objects.exclude(rule="fallback").delete()
    with django_assert_num_queries(1):
        assert len(member_offers(member=member, at=NOW)) == 2


def test_offer_rules_are_checked_by_the_database():
    from django.db import IntegrityError, transaction

    campaign = active_campaign()
    reward = RewardFactory()
    bad = [
        {"rule": "top_category", "category": ""},
        {"rule": "fallback", "category": "tea"},
        {"rule": "bought_category", "category": "tea"},
        {"rule": "top_category", "category": "tea", "days": 3},
    ]
    for fields in bad:
        with pytest.raises(IntegrityError), transaction.atomic():
            CampaignOffer.objects.create(campaign=campaign, reward=reward, **fields)
