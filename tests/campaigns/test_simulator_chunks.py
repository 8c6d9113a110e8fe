"""The simulator replays members in id-ordered chunks; its answer is the one replay of every
purchase in time order would give, budgets that run out mid-period included."""

import dataclasses
import random
import threading
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import DataError, connection, transaction
from django.utils import timezone

from campaigns import engine, selectors, simulator
from campaigns.models import EarningRule
from campaigns.simulator import _period_key, simulate
from ledger.models import Purchase, PurchaseLine
from members.models import Tier
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 3, 1, tzinfo=UTC)
CATEGORIES = ["dairy", "bakery", "coffee"]


def programme(rng: random.Random, *, caps: bool = True, budgets: bool = True) -> None:
    """A random rule set: every kind, caps, non-stacking rules and budgets that run out (caps
    and budgets unless told not to)."""
    EarningRuleFactory(name="Base", rate=rng.choice([1, 2]), rounding="half_up")
    for n in range(rng.randint(3, 6)):
        kind = rng.choice(["rate", "multiplier", "bonus"])
        fields = {"name": f"R{n}", "kind": kind, "priority": rng.randint(0, 9)}
        if kind == "rate":
            fields["rate"] = Decimal(rng.choice(["0.5", "1", "3"]))
        elif kind == "multiplier":
            fields["multiplier"] = rng.choice([2, 3])
        else:
            fields["bonus_points"] = rng.choice([5, 20, 40])
        if rng.random() < 0.5:
            fields["categories"] = [rng.choice(CATEGORIES)]
        if rng.random() < 0.3:
            fields["stacks"] = False
        if rng.random() < 0.3:
            fields["days_of_week"] = [rng.randrange(7), rng.randrange(7)]
        if rng.random() < 0.3:
            fields["first_purchase_only"] = True
        if caps and rng.random() < 0.4:
            fields["cap_per_member"] = rng.choice([10, 50])
            fields["cap_period"] = rng.choice(["day", "week", "month", "year"])
        if budgets and rng.random() < 0.6:
            fields["budget_points"] = rng.choice([0, 50, 300, 900])
        EarningRuleFactory(**fields)


def purchases(rng: random.Random, members, count: int) -> None:
    for i in range(count):
        at = START + timedelta(minutes=rng.randrange(0, 59 * 24 * 60))
        if rng.random() < 0.1:  # a few before the period: not a first purchase then
            at = START - timedelta(days=rng.randint(1, 30))
        purchase = Purchase.objects.create(
            member=rng.choice(members), channel="pos", external_id=f"C{i}", amount=0,
            currency="EUR", occurred_at=at,
        )  # fmt: skip
        total = Decimal(0)
        for _ in range(rng.randint(1, 3)):
            amount = Decimal(rng.randrange(100, 4000)) / 100
            total += amount
            PurchaseLine.objects.create(
                purchase=purchase, sku="S", category=rng.choice(CATEGORIES), amount=amount
            )
        Purchase.objects.filter(pk=purchase.pk).update(amount=total)


def replay_in_time_order(rules: list[EarningRule]) -> dict[int, int]:
    """The plain replay, one purchase after the other across all members, budgets lowered as
    points are given: what the chunked simulator must equal."""
    specs = [
        dataclasses.replace(selectors.rule_spec(r), budget_remaining=r.budget_points) for r in rules
    ]
    periods = {r.pk: r.cap_period for r in rules}
    prepared = engine.PreparedRules(specs)
    seen = set(Purchase.objects.filter(occurred_at__lt=START).values_list("member_id", flat=True))
    caps: dict[tuple[int, int], tuple] = {}
    points: dict[int, int] = defaultdict(int)
    for purchase in (
        Purchase.objects.filter(occurred_at__gte=START, occurred_at__lt=END)
        .select_related("member__tier")
        .prefetch_related("lines")
        .order_by("occurred_at", "pk")
    ):
        member = purchase.member
        local = timezone.localtime(purchase.occurred_at)
        earned = {}
        for rule_id, period in periods.items():
            state = caps.get((member.pk, rule_id))
            if state and state[0] == _period_key(period, local):
                earned[rule_id] = state[1]
        facts = engine.MemberFacts(
            member.pk,
            member.tier.name if member.tier else "",
            member.tier.earn_multiplier if member.tier else Decimal(1),
            member.pk not in seen,
            member.birth_date,
            timezone.localtime(member.enrolled_at).date(),
            earned_in_period=earned,
        )
        seen.add(member.pk)
        lines = tuple(
            engine.LineFacts(line.sku, line.category, line.quantity, line.amount)
            for line in purchase.lines.all()
        )
        result = engine.evaluate(
            purchase=engine.PurchaseFacts(purchase.amount, local, "pos", "", "EUR", lines),
            member=facts,
            rules=prepared,
            explain=False,
        )
        for award in result.awards:
            points[member.pk] += award.points
            if award.rule_id is None:
                continue
            key = _period_key(periods[award.rule_id], local)
            state = caps.get((member.pk, award.rule_id))
            before = state[1] if state and state[0] == key else 0
            caps[(member.pk, award.rule_id)] = (key, before + award.points)
            if award.rule_id in prepared.budget:
                prepared.budget[award.rule_id] -= award.points
    return dict(points)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_chunked_replay_equals_the_replay_in_time_order(seed):
    rng = random.Random(seed)
    gold = Tier.objects.create(name="Gold", rank=2, threshold=10**9, earn_multiplier=Decimal("1.5"))
    members = [
        MemberFactory(tier=gold if i % 3 == 0 else None, birth_date=date(1980, 1, 1 + i))
        for i in range(9)
    ]
    programme(rng)
    purchases(rng, members, 90)
    rules = list(EarningRule.objects.prefetch_related("tiers", "segments"))
    expected = replay_in_time_order(rules)

    one_chunk = simulate(start=START, end=END, rules=rules, chunk_members=1000)
    assert one_chunk.points_by_member == expected
    for size in (1, 2, 4):
        chunked = simulate(start=START, end=END, rules=rules, chunk_members=size)
        assert chunked.points_by_member == expected
        assert chunked.points_by_rule == one_chunk.points_by_rule
        assert chunked.top_members == one_chunk.top_members
        assert (chunked.points, chunked.members_reached, chunked.purchases) == (
            sum(expected.values()),
            len(expected),
            one_chunk.purchases,
        )


@pytest.mark.django_db
@pytest.mark.parametrize("seed", [5, 6, 7, 8])
@pytest.mark.parametrize("window_days", [1, 3])
@pytest.mark.parametrize("budgets", [True, False])
def test_budgets_found_in_windows_equal_the_replay_in_time_order(
    seed, window_days, budgets, monkeypatch
):
    """Without per-member caps among the rules a budget depends on, the day it runs out is
    looked for in windows of growing length, stopping once every budget ran out: the answer
    stays the replay's."""
    monkeypatch.setattr(simulator, "BUDGET_WINDOW_DAYS", window_days)
    windows = []
    members_purchases = simulator._members_purchases

    def counted(**kwargs):
        windows.append((kwargs["start"], kwargs["end"]))
        return members_purchases(**kwargs)

    monkeypatch.setattr(simulator, "_members_purchases", counted)
    rng = random.Random(seed)
    members = [MemberFactory(birth_date=date(1980, 2, 1 + i)) for i in range(8)]
    programme(rng, caps=False, budgets=budgets)
    # Every purchase earns it, so it runs out in the first days.
    EarningRuleFactory(name="Soon out", kind="bonus", bonus_points=20, budget_points=60)
    purchases(rng, members, 80)
    rules = list(EarningRule.objects.prefetch_related("tiers", "segments"))
    expected = replay_in_time_order(rules)

    report = simulate(start=START, end=END, rules=rules, chunk_members=3)
    assert report.points_by_member == expected
    assert report.points == sum(expected.values())
    assert report.points_by_rule["Soon out"] == 60
    budget_windows, full = windows[:-1], windows[-1]
    assert full == (START, END)
    assert budget_windows[0] == (START, START + timedelta(days=window_days))
    assert all(a[1] == b[0] for a, b in zip(budget_windows, budget_windows[1:], strict=False))
    if not budgets:  # only "Soon out" has one: the budget replay stopped early
        assert budget_windows[-1][1] <= START + timedelta(days=15)


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("the read-ahead thread serves PostgreSQL's server-side cursors")


@pytest.mark.django_db
def test_read_ahead_gives_every_row_in_order_and_stops_when_left_early(postgres_only, monkeypatch):
    monkeypatch.setattr(simulator, "FETCH_ROWS", 7)  # many batches
    with transaction.atomic():
        sql = "SELECT n FROM generate_series(1, %s) AS n ORDER BY n"
        assert [row[0] for row in simulator._rows(sql, [100])] == list(range(1, 101))
        rows = simulator._rows(sql, [100])
        assert [next(rows)[0] for _ in range(10)] == list(range(1, 11))
        rows.close()  # the thread is stopped and the cursor closed: the connection is free
        assert not [t for t in threading.enumerate() if t.name == "simulator-read-ahead"]
        with connection.cursor() as cursor:
            cursor.execute("SELECT 2")
            assert cursor.fetchone() == (2,)


@pytest.mark.django_db
def test_read_ahead_raises_the_databases_error_in_the_reader(postgres_only, monkeypatch):
    monkeypatch.setattr(simulator, "FETCH_ROWS", 5)
    sql = "SELECT 1 / (n - 12) FROM generate_series(1, 20) AS n"
    with pytest.raises(DataError), transaction.atomic():
        list(simulator._rows(sql, []))
