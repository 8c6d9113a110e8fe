"""The engine's campaign rules: audience, control group and the shared campaign caps (pure)."""

from datetime import datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from campaigns import control
from campaigns.engine import BONUS, MULTIPLIER, MemberFacts, PurchaseFacts, RuleSpec, evaluate

AT = datetime(2026, 11, 28, 13, 0)
BASE = RuleSpec(id=1, name="Base", rate=Decimal(1))


def purchase(amount="20.00"):
    return PurchaseFacts(amount=Decimal(amount), occurred_at=AT)


def bonus(rule_id=2, points=10, campaign=7, share=0, salt=12345):
    return RuleSpec(
        id=rule_id, name=f"C{rule_id}", kind=BONUS, bonus_points=points, campaign=campaign,
        control=(salt, share),
    )  # fmt: skip


def awards(rules, member, **kwargs):
    result = evaluate(purchase=purchase(), member=member, rules=rules, **kwargs)
    return {a.rule: a.points for a in result.awards}


def test_a_campaign_rule_needs_the_member_in_its_audience():
    assert awards([BASE, bonus()], MemberFacts(member_id=3)) == {"Base": 20}
    assert awards([BASE, bonus()], MemberFacts(member_id=3, campaigns=frozenset({7}))) == {
        "Base": 20,
        "C2": 10,
    }
    assert awards([bonus()], MemberFacts(member_id=3, campaigns=frozenset({8}))) == {}


@given(member_id=st.integers(1, 2**31 - 1), salt=st.integers(1, control.PRIME - 1),
       share=st.integers(0, 5000))  # fmt: skip
def test_the_control_group_is_the_same_bucket_arithmetic_as_in_sql(member_id, salt, share):
    member = MemberFacts(member_id=member_id, campaigns=frozenset({7}))
    got = awards([bonus(share=share, salt=salt)], member)
    held = control.bucket(member_id, salt) < share
    assert got == ({} if held else {"C2": 10})


def test_the_campaign_budget_and_member_cap_are_shared_by_its_rules_in_order():
    member = MemberFacts(member_id=3, campaigns=frozenset({7}), campaign_left={7: 12})
    rules = [bonus(2, 10), bonus(3, 10)]
    assert awards(rules, member) == {"C2": 10, "C3": 2}
    assert awards(rules, member, campaign_budget={7: 4}) == {"C2": 4}
    assert awards(rules, member._replace(campaign_left={}), campaign_budget={7: 0}) == {}
    # Another campaign's budget is not this one's.
    assert awards(rules, member._replace(campaign_left={}), campaign_budget={9: 0}) == {
        "C2": 10,
        "C3": 10,
    }


def test_a_multiplier_campaign_multiplies_the_base_rate_and_the_tier_line_follows_the_cap():
    double = RuleSpec(id=4, name="Double", kind=MULTIPLIER, multiplier=Decimal(2), campaign=7,
                      control=(1, 0))  # fmt: skip
    member = MemberFacts(member_id=3, campaigns=frozenset({7}), tier="Gold",
                         tier_multiplier=Decimal("1.5"))  # fmt: skip
    assert awards([BASE, double], member) == {"Base": 20, "Double": 20, "Tier Gold": 20}
    assert awards([BASE, double], member, campaign_budget={7: 6}) == {
        "Base": 20,
        "Double": 6,
        "Tier Gold": 13,
    }


@given(budget=st.integers(0, 40), left=st.none() | st.integers(0, 40))
def test_a_campaign_never_gives_more_than_its_budget_or_the_members_room(budget, left):
    member = MemberFacts(member_id=3, campaigns=frozenset({7}),
                         campaign_left={} if left is None else {7: left})  # fmt: skip
    got = awards([bonus(2, 10), bonus(3, 15)], member, campaign_budget={7: budget})
    total = sum(got.values())
    assert total == min(25, budget, 25 if left is None else left)
