"""rule_spec reads stored rules safely: malformed condition data skips the rule, never raises."""

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from campaigns.engine import MemberFacts, PurchaseFacts, evaluate
from campaigns.models import EarningRule, Segment
from campaigns.selectors import rule_spec
from members.models import Tier

json_ish = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
JSON_CONDITIONS = ["skus", "categories", "stores", "channels", "days_of_week"]


def stored(**fields) -> EarningRule:
    """A rule as a row read back, with its tiers and segments prefetched (none): no query."""
    rule = EarningRule(pk=3, name="Stored", kind="bonus", bonus_points=5, **fields)
    rule._prefetched_objects_cache = {
        "tiers": Tier.objects.none(),
        "segments": Segment.objects.none(),
    }
    return rule


@given(st.fixed_dictionaries({}, optional=dict.fromkeys(JSON_CONDITIONS, json_ish)))
def test_any_stored_condition_data_gives_a_spec_the_engine_evaluates(fields):
    spec = rule_spec(stored(**fields))
    at = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
    result = evaluate(
        purchase=PurchaseFacts(amount=Decimal("10.00"), occurred_at=at), member=MemberFacts(),
        rules=[spec],
    )  # fmt: skip
    assert result.points in (0, 5)


def test_a_malformed_stored_rule_is_skipped_with_a_warning_naming_it(caplog):
    spec = rule_spec(stored(days_of_week=["sat"], categories={"a": 1}))
    assert spec.unusable
    assert "Earning rule 3 ('Stored') skipped" in caplog.text
    at = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)  # a Saturday
    purchase = PurchaseFacts(amount=Decimal("10.00"), occurred_at=at)
    assert evaluate(purchase=purchase, member=MemberFacts(), rules=[spec]).awards == ()


def test_a_well_formed_stored_rule_keeps_its_conditions():
    spec = rule_spec(stored(days_of_week=[5, 6], skus=["A1"], channels=["pos"]))
    assert not spec.unusable
    assert (spec.days_of_week, spec.skus, spec.channels) == ({5, 6}, {"A1"}, {"pos"})
