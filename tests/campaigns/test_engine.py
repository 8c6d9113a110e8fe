"""The pure earning engine: every condition, cap, rounding mode, stacking and priority."""

from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from campaigns.engine import (
    BONUS,
    MULTIPLIER,
    RATE,
    ROUND_DOWN,
    ROUND_HALF,
    ROUND_UP,
    LineFacts,
    MemberFacts,
    PurchaseFacts,
    RuleSpec,
    evaluate,
    round_points,
)

SATURDAY = datetime(2026, 11, 28, 14, 30)
MONDAY = datetime(2026, 11, 30, 9, 0)
BASE = RuleSpec(id=1, name="Base", rate=Decimal(1))


def purchase(amount="25.00", at=SATURDAY, lines=(), **kwargs):
    return PurchaseFacts(amount=Decimal(amount), occurred_at=at, lines=tuple(lines), **kwargs)


def line(sku, category, amount, quantity=1):
    return LineFacts(sku=sku, category=category, quantity=quantity, amount=Decimal(amount))


def points(rules, p=None, m=None):
    return evaluate(purchase=p or purchase(), member=m or MemberFacts(), rules=rules).points


def test_base_rate_gives_points_per_currency_unit_with_an_explanation():
    result = evaluate(purchase=purchase("25.70"), member=MemberFacts(), rules=[BASE])
    assert result.points == 25
    assert result.explanation() == [{"rule": "Base", "rule_id": 1, "points": 25}]


@pytest.mark.parametrize(
    ("mode", "value", "expected"),
    [
        (ROUND_DOWN, "2.9", 2),
        (ROUND_DOWN, "2.5", 2),
        (ROUND_HALF, "2.5", 3),
        (ROUND_HALF, "2.49", 2),
        (ROUND_UP, "2.01", 3),
        (ROUND_UP, "2.00", 2),
    ],
)
def test_rounding_modes(mode, value, expected):
    assert round_points(Decimal(value), mode) == expected
    rule = RuleSpec(id=1, name="r", rate=Decimal(1), rounding=mode)
    assert points([rule], purchase(value)) == expected


def test_zero_amount_gives_no_award():
    assert evaluate(purchase=purchase("0.00"), member=MemberFacts(), rules=[BASE]).awards == ()


@pytest.mark.parametrize(
    ("condition", "hit", "miss"),
    [
        ({"channels": frozenset({"pos"})}, {"channel": "pos"}, {"channel": "webshop"}),
        ({"stores": frozenset({"ams-01"})}, {"store": "ams-01"}, {"store": "utr-02"}),
        ({"days_of_week": frozenset({5, 6})}, {"at": SATURDAY}, {"at": MONDAY}),
        ({"time_from": time(14), "time_until": time(15)}, {"at": SATURDAY}, {"at": MONDAY}),
        (
            {"starts_at": datetime(2026, 11, 1), "ends_at": datetime(2026, 11, 29)},
            {"at": SATURDAY},
            {"at": MONDAY},
        ),
        ({"min_spend": Decimal("20")}, {"amount": "20.00"}, {"amount": "19.99"}),
    ],
)
def test_purchase_conditions(condition, hit, miss):
    rule = RuleSpec(id=2, name="Bonus", kind=BONUS, bonus_points=50, **condition)
    assert points([rule], purchase(**hit)) == 50
    assert points([rule], purchase(**miss)) == 0


def test_time_window_across_midnight():
    rule = RuleSpec(
        id=2, name="Night", kind=BONUS, bonus_points=5, time_from=time(22), time_until=time(6)
    )
    assert points([rule], purchase(at=datetime(2026, 11, 28, 23, 0))) == 5
    assert points([rule], purchase(at=datetime(2026, 11, 28, 5, 59))) == 5
    assert points([rule], purchase(at=datetime(2026, 11, 28, 6, 0))) == 0
    assert points([rule], purchase(at=datetime(2026, 11, 28, 12, 0))) == 0


def test_half_open_time_windows():
    after = RuleSpec(id=2, name="PM", kind=BONUS, bonus_points=5, time_from=time(12))
    before = RuleSpec(id=3, name="AM", kind=BONUS, bonus_points=7, time_until=time(12))
    assert points([after, before], purchase(at=SATURDAY)) == 5
    assert points([after, before], purchase(at=MONDAY)) == 7


def test_tier_condition():
    rule = RuleSpec(id=2, name="Gold", kind=BONUS, bonus_points=10, tiers=frozenset({"Gold"}))
    assert points([rule], m=MemberFacts(tier="Gold")) == 10
    assert points([rule], m=MemberFacts(tier="Silver")) == 0
    assert points([rule], m=MemberFacts()) == 0


def test_first_purchase_only():
    rule = RuleSpec(id=2, name="Welcome", kind=BONUS, bonus_points=100, first_purchase_only=True)
    assert points([rule], m=MemberFacts(first_purchase=True)) == 100
    assert points([rule], m=MemberFacts(first_purchase=False)) == 0


def test_birthday():
    rule = RuleSpec(id=2, name="Birthday", kind=BONUS, bonus_points=200, birthday=True)
    assert points([rule], m=MemberFacts(birth_date=date(1990, 11, 28))) == 200
    assert points([rule], m=MemberFacts(birth_date=date(1990, 11, 27))) == 0
    assert points([rule], m=MemberFacts()) == 0
    # 29 February birthdays count on 28 February in a common year.
    leapling = MemberFacts(birth_date=date(2000, 2, 29))
    assert points([rule], purchase(at=datetime(2027, 2, 28, 12)), leapling) == 200
    assert points([rule], purchase(at=datetime(2028, 2, 28, 12)), leapling) == 0


def test_anniversary_not_on_the_day_of_enrolment_itself():
    rule = RuleSpec(id=2, name="Anniversary", kind=BONUS, bonus_points=30, anniversary=True)
    assert points([rule], m=MemberFacts(enrolled_on=date(2024, 11, 28))) == 30
    assert points([rule], m=MemberFacts(enrolled_on=date(2026, 11, 28))) == 0
    assert points([rule], m=MemberFacts(enrolled_on=date(2024, 11, 27))) == 0


def test_sku_and_category_filters_count_only_matching_lines():
    lines = [line("A1", "dairy", "10.00"), line("B2", "bakery", "5.50"), line("C3", "dairy", "3")]
    p = purchase("18.50", lines=lines)
    by_category = RuleSpec(id=2, name="Dairy", rate=Decimal(2), categories=frozenset({"dairy"}))
    by_sku = RuleSpec(id=3, name="B2", rate=Decimal(2), skus=frozenset({"B2"}))
    assert points([by_category], p) == 26
    assert points([by_sku], p) == 11
    nothing = RuleSpec(id=4, name="Meat", rate=Decimal(2), categories=frozenset({"meat"}))
    assert evaluate(purchase=p, member=MemberFacts(), rules=[nothing]).awards == ()
    # Both filters: a line must match both.
    both = RuleSpec(
        id=5, name="x", rate=Decimal(1), skus=frozenset({"A1"}), categories=frozenset({"bakery"})
    )
    assert points([both], p) == 0


def test_multiplier_on_a_category_doubles_the_base_rate_there():
    lines = [line("A1", "dairy", "10.00"), line("B2", "bakery", "5.00")]
    double = RuleSpec(
        id=2, name="Double dairy", kind=MULTIPLIER, multiplier=Decimal(2),
        categories=frozenset({"dairy"}),
    )  # fmt: skip
    result = evaluate(
        purchase=purchase("15.00", lines=lines), member=MemberFacts(), rules=[double, BASE]
    )
    assert [(a.rule, a.points) for a in result.awards] == [("Base", 15), ("Double dairy", 10)]


def test_multiplier_without_a_base_rate_gives_nothing():
    double = RuleSpec(id=2, name="Double", kind=MULTIPLIER, multiplier=Decimal(2))
    assert points([double]) == 0


def test_stacking_rules_all_apply():
    bonus = RuleSpec(id=2, name="Bonus", kind=BONUS, bonus_points=10)
    weekend = RuleSpec(id=3, name="Weekend", kind=BONUS, bonus_points=20)
    assert points([BASE, bonus, weekend]) == 25 + 10 + 20


def test_only_the_highest_priority_non_stacking_rule_applies():
    low = RuleSpec(id=2, name="Low", kind=BONUS, bonus_points=10, stacks=False, priority=1)
    high = RuleSpec(id=3, name="High", kind=BONUS, bonus_points=5, stacks=False, priority=9)
    result = evaluate(purchase=purchase(), member=MemberFacts(), rules=[BASE, low, high])
    assert [a.rule for a in result.awards] == ["Base", "High"]
    # Tie on priority: the oldest rule (lowest id) wins.
    same = RuleSpec(id=4, name="Same", kind=BONUS, bonus_points=1, stacks=False, priority=9)
    result = evaluate(purchase=purchase(), member=MemberFacts(), rules=[same, high, BASE])
    assert [a.rule for a in result.awards] == ["Base", "High"]


def test_a_non_stacking_rule_that_does_not_match_does_not_block_others():
    high = RuleSpec(
        id=3, name="High", kind=BONUS, bonus_points=5, stacks=False, priority=9,
        channels=frozenset({"app"}),
    )  # fmt: skip
    low = RuleSpec(id=2, name="Low", kind=BONUS, bonus_points=10, stacks=False, priority=1)
    assert points([high, low], purchase(channel="pos")) == 10


def test_cap_per_purchase():
    rule = RuleSpec(id=1, name="Base", rate=Decimal(1), cap_per_purchase=100)
    result = evaluate(purchase=purchase("250"), member=MemberFacts(), rules=[rule])
    assert result.points == 100
    assert "capped per purchase" in result.awards[0].reason


def test_cap_per_member_period_uses_what_was_already_earned():
    rule = RuleSpec(id=7, name="Promo", kind=BONUS, bonus_points=50, cap_per_member=120)
    assert points([rule], m=MemberFacts(earned_in_period={7: 100})) == 20
    assert points([rule], m=MemberFacts(earned_in_period={7: 120})) == 0
    assert points([rule], m=MemberFacts(earned_in_period={8: 120})) == 50


def test_budget_remaining_caps_and_exhausts():
    rule = RuleSpec(id=1, name="Base", rate=Decimal(1), budget_remaining=10)
    assert points([rule]) == 10
    assert points([RuleSpec(id=1, name="Base", rate=Decimal(1), budget_remaining=0)]) == 0


def test_multiplier_uses_the_rate_even_when_the_base_was_capped():
    base = RuleSpec(id=1, name="Base", rate=Decimal(1), cap_per_purchase=5)
    double = RuleSpec(id=2, name="Double", kind=MULTIPLIER, multiplier=Decimal(2))
    assert points([base, double], purchase("20")) == 5 + 20


def test_tier_multiplier_adds_a_line():
    result = evaluate(
        purchase=purchase("20"),
        member=MemberFacts(tier="Gold", tier_multiplier=Decimal("1.5")),
        rules=[BASE],
    )
    assert result.explanation()[-1] == {"rule": "Tier Gold", "rule_id": None, "points": 10}
    assert result.points == 30


def test_no_rules_no_points():
    assert points([]) == 0


amounts = st.decimals(min_value=0, max_value=10_000, places=2)
rates = st.decimals(min_value=0, max_value=10, places=2)


@given(amount=amounts, rate=rates)
def test_rounding_modes_bracket_the_exact_value(amount, rate):
    exact = amount * rate
    down, half, up = (round_points(exact, m) for m in (ROUND_DOWN, ROUND_HALF, ROUND_UP))
    assert down <= exact <= up
    assert down <= half <= up
    assert up - down <= 1


@given(
    amount=amounts,
    rate=rates,
    cap=st.none() | st.integers(0, 500),
    budget=st.none() | st.integers(0, 500),
    earned=st.integers(0, 500),
    member_cap=st.none() | st.integers(0, 500),
)
def test_caps_never_exceeded_and_points_never_negative(
    amount, rate, cap, budget, earned, member_cap
):
    rule = RuleSpec(
        id=1, name="r", rate=rate, cap_per_purchase=cap, budget_remaining=budget,
        cap_per_member=member_cap,
    )  # fmt: skip
    got = points([rule], purchase(str(amount)), MemberFacts(earned_in_period={1: earned}))
    assert got >= 0
    assert got <= round_points(amount * rate, ROUND_DOWN)
    if cap is not None:
        assert got <= cap
    if budget is not None:
        assert got <= budget
    if member_cap is not None:
        assert got <= max(member_cap - earned, 0)


@given(st.permutations([BASE, RuleSpec(id=2, name="B", kind=BONUS, bonus_points=3, stacks=False),
                        RuleSpec(id=3, name="C", kind=BONUS, bonus_points=4, stacks=False,
                                 priority=2)]))  # fmt: skip
def test_result_does_not_depend_on_rule_order(rules):
    result = evaluate(purchase=purchase(), member=MemberFacts(), rules=rules)
    assert [(a.rule, a.points) for a in result.awards] == [("Base", 25), ("C", 4)]


# Anything a JSON column, a fixture or a careless caller could hand the engine.
json_ish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
anything = (
    json_ish
    | st.decimals(allow_nan=True, allow_infinity=True)
    | st.times(timezones=st.sampled_from([None, UTC]))
    | st.datetimes(timezones=st.sampled_from([None, UTC]))
    | st.frozensets(st.none() | st.integers() | st.text(max_size=3), max_size=3)
    | st.frozensets(st.integers(-2, 8), max_size=3)
    | st.sampled_from([RATE, MULTIPLIER, BONUS, ROUND_DOWN, ROUND_UP, Decimal("1e30")])
)
SPEC_FIELDS = [f for f in RuleSpec.__dataclass_fields__ if f not in {"id", "name"}]


@given(
    fields=st.dictionaries(st.sampled_from(SPEC_FIELDS), anything, max_size=len(SPEC_FIELDS)),
    at=st.sampled_from([SATURDAY, SATURDAY.replace(tzinfo=UTC)]),
)
def test_malformed_rule_data_never_fails_a_purchase(fields, at):
    bad = RuleSpec(id=2, name="Bad", **fields)
    p = purchase(at=at, lines=[line("A1", "dairy", "25.00")], channel="pos", store="ams-01")
    member = MemberFacts(tier="Gold", birth_date=date(1990, 11, 28), earned_in_period={2: 3})
    result = evaluate(purchase=p, member=member, rules=[BASE, bad])
    # The good rule is untouched by the bad one, whatever the bad one holds.
    assert [a for a in result.awards if a.rule_id == 1] == [(1, "Base", 25, "1 per unit on 25.00")]
    assert all(type(a.points) is int and a.points > 0 for a in result.awards)


def test_a_malformed_rule_is_skipped_with_a_warning_naming_it(caplog):
    bad = RuleSpec(id=7, name="Weekend", days_of_week=frozenset({"sat"}))
    assert points([BASE, bad]) == 25
    assert "Earning rule 7 ('Weekend') skipped: days_of_week" in caplog.text


def test_a_rule_failing_against_one_purchase_is_skipped_with_a_warning(caplog):
    aware = RuleSpec(id=8, name="Aware", kind=BONUS, bonus_points=5,
                     starts_at=SATURDAY.replace(tzinfo=UTC))  # fmt: skip
    assert points([BASE, aware]) == 25  # a naive purchase time cannot be compared with it
    assert "Earning rule 8 ('Aware') skipped" in caplog.text
