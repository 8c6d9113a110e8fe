"""Earning rules limited to segments: the engine's check, the till (one query for all the
rules' segments, none without them) and the simulator (membership as of now)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import engine
from campaigns.models import EarningRule, Segment
from campaigns.services import purchase_record
from campaigns.simulator import simulate
from members import config_cache
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory

AT = datetime(2026, 11, 28, 13, 0, tzinfo=UTC)
_n = iter(range(1, 10_000))


def buy(member, amount="20.00", at=AT):
    return purchase_record(
        member=member,
        channel="pos",
        external_id=f"S{next(_n)}",
        amount=Decimal(amount),
        currency="EUR",
        occurred_at=at,
    )


def test_engine_applies_a_segment_rule_only_to_members_inside():
    rule = engine.RuleSpec(
        id=1, name="VIP", kind=engine.BONUS, bonus_points=10, segments=frozenset({7, 8})
    )
    purchase = engine.PurchaseFacts(amount=Decimal(10), occurred_at=datetime(2026, 1, 1, 12))
    inside = engine.MemberFacts(member_id=1, segments=frozenset({8}))
    outside = engine.MemberFacts(member_id=2, segments=frozenset({9}))
    assert engine.evaluate(purchase=purchase, member=inside, rules=[rule]).points == 10
    assert engine.evaluate(purchase=purchase, member=outside, rules=[rule]).points == 0
    assert engine.evaluate(purchase=purchase, member=engine.MemberFacts(), rules=[rule]).points == 0
    broken = engine.RuleSpec(id=2, name="Bad", segments=frozenset({"7"}))
    assert engine.spec_problem(broken) == "segments"


@pytest.fixture
def vip(db):
    segment = Segment.objects.create(
        name="VIP", definition={"condition": "profile", "key": "vip", "equals": True}
    )
    EarningRuleFactory(name="Base", rate=Decimal(1))
    rule = EarningRuleFactory(name="VIP bonus", kind=EarningRule.Kind.BONUS, bonus_points=50)
    rule.segments.add(segment)
    return segment


@pytest.mark.django_db
def test_a_purchase_earns_the_segment_rule_only_inside_the_segment(vip):
    inside = MemberFactory(profile={"vip": True})
    outside = MemberFactory(profile={"vip": False})
    assert buy(inside).points_earned == 70
    assert buy(outside).points_earned == 20
    # Membership is judged at each purchase: the member left the segment.
    inside.profile = {}
    inside.save(update_fields=["profile"])
    assert buy(inside).points_earned == 20


@pytest.mark.django_db
def test_a_rule_with_several_segments_needs_any_one(vip):
    other = Segment.objects.create(
        name="Big spenders", definition={"condition": "monetary", "min": 100}
    )
    EarningRule.objects.get(name="VIP bonus").segments.add(other)
    spender = MemberFactory()
    # This purchase is stored before the rules run: it counts towards its own segment.
    assert buy(spender, amount="150.00").points_earned == 200
    assert buy(MemberFactory(), amount="99.00").points_earned == 99


@pytest.mark.django_db
def test_the_purchase_counts_towards_a_frequency_segment(db):
    segment = Segment.objects.create(
        name="Regulars", definition={"condition": "frequency", "min": 2}
    )
    rule = EarningRuleFactory(name="Regulars", kind=EarningRule.Kind.BONUS, bonus_points=5)
    rule.segments.add(segment)
    member = MemberFactory()
    assert buy(member).points_earned == 0
    assert buy(member).points_earned == 5


def _earn_statements(member) -> int:
    with CaptureQueriesContext(connection) as queries:
        buy(member)
    assert not [q for q in queries.captured_queries if "in_segment_" in q["sql"]]
    return len(queries)


@pytest.mark.django_db
def test_the_earn_path_asks_segments_only_when_a_rule_uses_one(settings):
    settings.LOYALTY_CONFIG_CACHE_SECONDS = 60
    config_cache.clear()
    EarningRuleFactory(name="Base", rate=Decimal(1))
    EarningRuleFactory(name="Weekend", kind=EarningRule.Kind.BONUS, bonus_points=5)
    members = [MemberFactory(profile={"vip": True}) for _ in range(4)]
    for member in members:
        buy(member, at=AT - timedelta(days=1))  # not first purchases: no referral look-up
    buy(members[0])  # warms the rule cache
    without = _earn_statements(members[1])

    segment = Segment.objects.create(
        name="VIP", definition={"condition": "profile", "key": "vip", "equals": True}
    )
    rule = EarningRuleFactory(name="VIP bonus", kind=EarningRule.Kind.BONUS, bonus_points=50)
    rule.segments.add(segment)
    second = Segment.objects.create(
        name="Any buyer", definition={"condition": "frequency", "min": 1}
    )
    rule.segments.add(second)
    config_cache.clear()
    buy(members[0])  # warms the cache again, with the segments
    result = None
    with CaptureQueriesContext(connection) as queries:
        result = buy(members[2])
    assert result.points_earned == 20 + 5 + 50
    # Two segments, one query; the extra award row joins the awards' one INSERT.
    assert len(queries) == without + 1
    config_cache.clear()


@pytest.mark.django_db
def test_the_simulator_judges_segments_as_of_now(vip):
    inside = MemberFactory(profile={"vip": True})
    outside = MemberFactory()
    for member in (inside, outside):
        buy(member, at=datetime(2026, 3, 1, 12, tzinfo=UTC))
    report = simulate(
        start=datetime(2026, 1, 1, tzinfo=UTC),
        end=datetime(2026, 6, 1, tzinfo=UTC),
        rules=list(EarningRule.objects.prefetch_related("tiers", "segments")),
    )
    assert report.points_by_member == {inside.pk: 70, outside.pk: 20}
    assert report.points_by_rule["VIP bonus"] == 50
