"""Earning campaigns on the purchase path: their rules reach only the treated audience, and
their budget caps (points, money, per member per period) stop issuance exactly at the cap,
also under 16 concurrent purchases, while returns and rejected reviews give budget back."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings
from django.utils import timezone

from campaigns import control, services
from campaigns.models import (
    AbuseRule,
    Campaign,
    CampaignMemberUsage,
    EarningAward,
    PurchaseReview,
    Segment,
)
from campaigns.services import return_record
from members.models import Tier
from tests.campaigns.campaigning import buy, campaign_points, running
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory, UserFactory
from tests.ledger.concurrency import run_together


def spent(campaign) -> int:
    return Campaign.objects.get(pk=campaign.pk).points_spent


def usage(campaign, member) -> list[int]:
    return list(
        CampaignMemberUsage.objects.filter(campaign=campaign, member=member)
        .order_by("period_start")
        .values_list("points", flat=True)
    )


@pytest.mark.django_db
def test_a_campaign_rule_reaches_its_frozen_audience_only():
    gold = Tier.objects.create(name="Gold", rank=50, threshold=5000)
    anna, bram = MemberFactory(tier=gold), MemberFactory()
    segment = Segment.objects.create(
        name="Gold", definition={"all": [{"condition": "tier", "in": ["Gold"]}]}
    )
    running(segment=segment)
    late = MemberFactory(tier=gold)
    assert campaign_points(buy(anna)) == 10
    assert campaign_points(buy(bram)) == 0  # not in the segment
    assert campaign_points(buy(late)) == 0  # joined the segment after the start


@pytest.mark.django_db
def test_the_control_group_gets_nothing_and_the_rest_get_the_bonus():
    members = [MemberFactory() for _ in range(40)]
    campaign = running(control_basis_points=5000)
    held = {m.pk for m in members if control.bucket(m.pk, campaign.salt) < 5000}
    assert 0 < len(held) < 40
    for member in members:
        assert campaign_points(buy(member)) == (0 if member.pk in held else 10)


@pytest.mark.django_db
def test_a_campaign_rule_needs_its_campaign_active_and_in_its_period():
    member = MemberFactory()
    campaign = running(days_ago=2, days=1)  # ended a day ago by its end date
    assert campaign_points(buy(member)) == 0
    assert campaign_points(buy(member, at=campaign.starts_at + timedelta(hours=1))) == 10


@pytest.mark.django_db
def test_the_budget_grants_its_last_points_in_part_then_nothing():
    member = MemberFactory()
    campaign = running(budget_points=25)
    got = [campaign_points(buy(member)) for _ in range(4)]
    assert got == [10, 10, 5, 0]
    assert spent(campaign) == 25


@pytest.mark.django_db
def test_two_rules_of_one_campaign_share_its_budget_in_rule_order():
    member = MemberFactory()
    campaign = running(
        budget_points=15, rules=({"bonus_points": 10}, {"bonus_points": 10, "name": "Second"})
    )
    result = buy(member)
    assert sorted(r["points"] for r in result.rules) == [5, 10]
    assert spent(campaign) == 15


@pytest.mark.django_db
@override_settings(LOYALTY_POINT_VALUE=Decimal("0.01"))
def test_the_money_budget_counts_points_at_the_frozen_point_value():
    member = MemberFactory()
    campaign = running(budget_money=Decimal("0.25"))
    with override_settings(LOYALTY_POINT_VALUE=Decimal("1.00")):  # changed later: no effect
        got = [campaign_points(buy(member)) for _ in range(4)]
    assert got == [10, 10, 5, 0]
    campaign.refresh_from_db()
    assert campaign.money_spent == Decimal("0.25")


@pytest.mark.django_db
def test_the_member_cap_counts_per_period_in_the_programme_time_zone():
    member, other = MemberFactory(), MemberFactory()
    campaign = running(days_ago=5, member_cap_points=15, member_cap_period="day")
    day = timezone.localtime(campaign.starts_at).replace(hour=12) + timedelta(days=1)
    assert [campaign_points(buy(member, at=day)) for _ in range(3)] == [10, 5, 0]
    assert campaign_points(buy(other, at=day)) == 10  # a cap per member, not in all
    assert campaign_points(buy(member, at=day + timedelta(days=1))) == 10  # a new day
    assert usage(campaign, member) == [15, 10]


@pytest.mark.django_db
def test_a_lifetime_cap_holds_for_the_whole_campaign():
    member = MemberFactory()
    campaign = running(days_ago=5, member_cap_points=25)
    got = [campaign_points(buy(member, at=timezone.now() - timedelta(days=d))) for d in (4, 3, 2)]
    assert got == [10, 10, 5]
    assert usage(campaign, member) == [25]


@pytest.mark.django_db
def test_returns_give_the_campaign_its_share_back_in_proportion():
    EarningRuleFactory(name="Base rate", rate=Decimal(1))
    member = MemberFactory()
    campaign = running(budget_points=100, member_cap_points=50)
    purchase = buy(member, "25.00").purchase  # 25 base + 10 campaign
    assert spent(campaign) == 10
    return_record(purchase=purchase, amount=Decimal("12.50"))  # 17 of 35 back: 4 of 10
    assert (spent(campaign), usage(campaign, member)) == (6, [6])
    return_record(purchase=purchase)  # the rest: 18 of 35, the campaign's 6
    assert (spent(campaign), usage(campaign, member)) == (0, [0])


@pytest.mark.django_db
def test_a_rejected_review_gives_the_held_campaign_points_back():
    AbuseRule.objects.create(kind=AbuseRule.Kind.POINTS_PER_DAY, threshold=Decimal(5))
    member = MemberFactory()
    campaign = running(budget_points=100, member_cap_points=50)
    result = buy(member)
    assert result.review_reason
    assert spent(campaign) == 10  # held points count: approving them posts them
    review = PurchaseReview.objects.get(purchase=result.purchase)
    services.purchase_review_reject(review=review, actor=UserFactory(is_staff=True))
    assert (spent(campaign), usage(campaign, member)) == (0, [0])


@pytest.mark.django_db
def test_the_database_refuses_an_overspend_that_skips_the_service():
    member = MemberFactory()
    campaign = running(budget_points=10, budget_money=Decimal("1"), member_cap_points=10)
    buy(member)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(points_spent=11)
    with pytest.raises(IntegrityError), transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).update(budget_points=None, points_spent=101)
    with pytest.raises(IntegrityError), transaction.atomic():
        CampaignMemberUsage.objects.filter(campaign=campaign).update(points=11)


@pytest.mark.django_db
def test_a_campaign_without_limits_is_never_locked_or_counted():
    member = MemberFactory()
    campaign = running()
    assert campaign_points(buy(member)) == 10
    assert spent(campaign) == 0
    assert not CampaignMemberUsage.objects.exists()
    assert EarningAward.objects.filter(rule__campaign=campaign).count() == 1


# -- real concurrency (PostgreSQL) -------------------------------------------------------------


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")


def sixteen(member_for):
    return run_together(
        *[lambda i=i: buy(member_for(i), external_id=f"RACE-{i}").points_earned for i in range(16)]
    )


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_purchases_stop_exactly_at_the_total_budget(postgres_only):
    members = [MemberFactory() for _ in range(16)]
    campaign = running(budget_points=55)
    results = sixteen(lambda i: members[i])
    assert all(isinstance(r, int) for r in results), results
    assert sorted(results, reverse=True)[:7] == [10, 10, 10, 10, 10, 5, 0]
    assert sum(results) == 55
    assert spent(campaign) == 55
    assert (
        sum(EarningAward.objects.filter(rule__campaign=campaign).values_list("points", flat=True))
        == 55
    )

    # A return gives budget back, and the next purchase may spend it.
    given = next(m for m, points in zip(members, results, strict=True) if points == 10)
    purchase = EarningAward.objects.get(member=given, rule__campaign=campaign).purchase
    return_record(purchase=purchase)
    assert spent(campaign) == 45
    assert campaign_points(buy(members[0], external_id="AFTER")) == 10
    assert spent(campaign) == 55


@pytest.mark.django_db(transaction=True)
def test_sixteen_concurrent_purchases_of_one_member_stop_exactly_at_the_member_cap(postgres_only):
    member, other = MemberFactory(), MemberFactory()
    campaign = running(budget_points=1000, member_cap_points=35, member_cap_period="week")
    results = sixteen(lambda i: member)
    assert all(isinstance(r, int) for r in results), results
    assert sorted(results, reverse=True)[:5] == [10, 10, 10, 5, 0]
    assert sum(results) == 35
    assert usage(campaign, member) == [35]
    assert spent(campaign) == 35
    assert campaign_points(buy(other, external_id="OTHER")) == 10

    purchase = next(a.purchase for a in EarningAward.objects.filter(member=member, points=10))
    return_record(purchase=purchase)
    assert usage(campaign, member) == [25]
    assert campaign_points(buy(member, external_id="AFTER")) == 10
