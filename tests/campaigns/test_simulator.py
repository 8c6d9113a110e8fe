"""The simulator replays the real engine: same purchases, same rules, same points."""

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from campaigns.models import EarningRule
from campaigns.services import purchase_record
from campaigns.simulator import simulate
from ledger.models import Entry, Purchase
from members.models import Tier
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
CATEGORIES = ["dairy", "bakery", "coffee", "produce"]


def rule_set():
    # Out of reach, so no member moves tier while the purchases are recorded.
    gold = Tier.objects.create(name="Gold", rank=2, threshold=10**9, earn_multiplier=Decimal("1.5"))
    EarningRuleFactory(name="Base", rate=1, rounding="half_up")
    EarningRuleFactory(
        name="Double coffee", kind="multiplier", multiplier=2, categories=["coffee"], priority=5,
        stacks=False,
    )  # fmt: skip
    EarningRuleFactory(
        name="Triple dairy weekend", kind="multiplier", multiplier=3, categories=["dairy"],
        days_of_week=[5, 6], priority=9, stacks=False,
    )  # fmt: skip
    EarningRuleFactory(name="Welcome", kind="bonus", bonus_points=50, first_purchase_only=True)
    EarningRuleFactory(name="Birthday", kind="bonus", bonus_points=100, birthday=True)
    EarningRuleFactory(
        name="Morning", kind="bonus", bonus_points=15, time_from="07:00", time_until="10:00",
        cap_per_member=30, cap_period="month",
    )  # fmt: skip
    EarningRuleFactory(
        name="Big basket", kind="bonus", bonus_points=40, min_spend=60, budget_points=300
    )
    gold_rule = EarningRuleFactory(name="Gold extra", kind="bonus", bonus_points=5)
    gold_rule.tiers.add(gold)
    return gold


def record_purchases(rng, members, count):
    times = sorted(START + timedelta(minutes=rng.randrange(0, 90 * 24 * 60)) for _ in range(count))
    for i, at in enumerate(times):
        lines = [
            {
                "sku": f"SKU{rng.randrange(20)}",
                "category": rng.choice(CATEGORIES),
                "quantity": rng.randint(1, 3),
                "amount": Decimal(rng.randrange(100, 4000)) / 100,
            }
            for _ in range(rng.randint(1, 3))
        ]
        purchase_record(
            member=rng.choice(members),
            channel=rng.choice(["pos", "webshop"]),
            external_id=f"S{i}",
            amount=sum(line["amount"] for line in lines),
            currency="EUR",
            occurred_at=at,
            store=rng.choice(["ams", "utr"]),
            lines=lines,
        )


@pytest.mark.django_db
def test_simulator_gives_the_points_the_real_path_wrote():
    rng = random.Random(7)
    gold = rule_set()
    members = [MemberFactory(tier=gold if i % 4 == 0 else None) for i in range(12)]
    members[1].birth_date = date(1980, 2, 14)
    members[1].save()
    record_purchases(rng, members, 120)

    real = defaultdict(int)
    for member_id, points in (
        Entry.objects.filter(kind=Entry.Kind.EARN, purchase__isnull=False)
        .values_list("purchase__member_id")
        .annotate(total=Sum("amount"))
    ):
        real[member_id] = points

    report = simulate(start=START, end=END, rules=list(EarningRule.objects.all()))
    assert report.purchases == 120
    assert report.points_by_member == dict(real)
    assert report.points == sum(real.values())
    assert report.members_reached == len(real)
    assert report.cost == (Decimal(report.points) * Decimal("0.01")).quantize(Decimal("0.01"))
    assert report.top_members[0][1] == max(real.values())
    # Every rule took part, so the comparison exercised all of them.
    assert set(report.points_by_rule) >= {
        "Base", "Double coffee", "Triple dairy weekend", "Welcome", "Morning", "Big basket",
        "Gold extra", "Tier Gold",
    }  # fmt: skip


@pytest.mark.django_db
def test_simulation_writes_nothing_and_respects_the_period(django_assert_max_num_queries):
    EarningRuleFactory(name="Base", rate=1)
    member = MemberFactory()
    for i, at in enumerate([START - timedelta(days=1), START, END - timedelta(seconds=1), END]):
        purchase_record(
            member=member, channel="pos", external_id=f"P{i}", amount=10, currency="EUR",
            occurred_at=at,
        )  # fmt: skip
    before = (Purchase.objects.count(), Entry.objects.count())
    # Constant, however many purchases: rules, members, one streamed read (+ its savepoint).
    with django_assert_max_num_queries(12):
        report = simulate(start=START, end=END)
    assert report.purchases == 2
    assert report.points == 20
    assert (Purchase.objects.count(), Entry.objects.count()) == before


@pytest.mark.django_db
def test_a_rule_not_yet_live_can_be_simulated():
    member = MemberFactory()
    purchase_record(
        member=member, channel="pos", external_id="P", amount=10, currency="EUR",
        occurred_at=START,
    )  # fmt: skip
    draft = EarningRuleFactory(name="Draft", rate=3, active=False)
    report = simulate(start=START, end=END, rules=[draft])
    assert report.points == 30
    assert report.points_by_rule == {"Draft": 30}
    assert simulate(start=START, end=END, rules=[]).points == 0


@pytest.mark.django_db
def test_simulate_rules_command_prints_the_report():
    from io import StringIO

    from django.core.management import call_command

    rule = EarningRuleFactory(name="Base", rate=1)
    purchase_record(
        member=MemberFactory(), channel="pos", external_id="P", amount=12, currency="EUR",
        occurred_at=START + timedelta(days=3),
    )  # fmt: skip
    out = StringIO()
    call_command(
        "simulate_rules", "--start", "2026-01-01", "--end", "2026-02-01", "--rule", str(rule.pk),
        stdout=out,
    )  # fmt: skip
    assert "points: 12" in out.getvalue()
    assert "members reached: 1" in out.getvalue()


@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        ("2026-02-01", "2026-01-01", "--end must be after --start"),
        ("1999-12-31", "2026-01-01", "Simulate from 2000-01-01 at the earliest."),
        ("2026-01-01", "2099-01-01", "The period cannot end more than a day from now."),
    ],
)
def test_simulate_rules_command_refuses_a_bad_period_in_one_line(start, end, error):
    from io import StringIO

    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError) as refused:
        call_command("simulate_rules", "--start", start, "--end", end, stdout=(out := StringIO()))
    assert str(refused.value) == error
    assert out.getvalue() == ""


def test_simulate_refuses_a_reversed_period():
    with pytest.raises(ValueError, match="must be after start"):
        simulate(start=END, end=START, rules=[])
