"""Every points write under one lock order: a mixed load on a few members never deadlocks.

Purchases, returns, one- and two-step redemptions, staff adjustments and expiry runs, on their
own connections at once, on the same handful of members. Refusals (not enough points, nothing
left to return) are fine; a database error (deadlock, serialization failure) is not, and every
account must reconcile with its entries, lots, holds and pending points afterwards.
"""

import random
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from campaigns.services import purchase_record, return_record
from ledger import services as ledger_services
from ledger.selectors import ledger_mismatches
from loyalty_site.errors import DomainError
from rewards import services as reward_services
from rewards.models import Redemption
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory, UserFactory
from tests.ledger.concurrency import run_together
from tests.rewards.factories import RewardFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MEMBERS = 4
THREADS = 12
SECONDS = 3.0
MAX_OPS_PER_THREAD = 40


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks (SQLite has one writer at a time)")


def test_a_mixed_load_on_a_few_members_never_deadlocks():
    EarningRuleFactory(name="Base rate", rate=Decimal(1))
    reward = RewardFactory(points=20, stock=100_000)
    staff = UserFactory(is_staff=True)
    members = [MemberFactory() for _ in range(MEMBERS)]
    past = timezone.now() - timedelta(days=1)
    for member in members:
        ledger_services.points_earn(member=member, points=300, reason="start")
        # Lots already past their expiry date, so that the expiry runs have work to do.
        ledger_services.points_earn(
            member=member, points=40, reason="start", at=past - timedelta(days=1), expires_at=past
        )

    purchases, purchases_guard = [], threading.Lock()
    counter = iter(range(1_000_000))
    deadline = time.monotonic() + SECONDS

    def buy(member):
        result = purchase_record(
            member=member,
            channel="pos",
            external_id=f"LO{next(counter)}",
            amount=Decimal(random.choice(["5.00", "12.50", "40.00"])),
            currency="EUR",
        )
        with purchases_guard:
            purchases.append(result.purchase)
        return "purchase"

    def give_back(member):
        with purchases_guard:
            mine = [p for p in purchases if p.member_id == member.pk]
        if not mine:
            return buy(member)
        purchase = random.choice(mine)
        return_record(purchase=purchase, amount=purchase.amount / 2)
        return "return"

    def redeem(member):
        reward_services.redemption_redeem(member=member, reward=reward, channel="app")
        return "redeem"

    def reserve_then_settle(member):
        reservation = reward_services.redemption_reserve(member=member, points=15, channel="app")
        if random.random() < 0.7:
            reward_services.redemption_confirm(redemption=reservation)
        else:
            reward_services.redemption_cancel(redemption=reservation)
        return "reserve"

    def adjust(member):
        ledger_services.points_adjust(
            member=member, points=random.choice([-10, 5, 25]), reason="goodwill", actor=staff
        )
        return "adjust"

    def expire(member):
        ledger_services.points_expire(member=member if random.random() < 0.5 else None)
        return "expire"

    operations = [buy, buy, give_back, redeem, reserve_then_settle, adjust, expire]

    def worker(seed):
        rng = random.Random(seed)
        done, refused, failed = [], [], []
        for _ in range(MAX_OPS_PER_THREAD):
            if time.monotonic() > deadline:
                break
            operation, member = rng.choice(operations), rng.choice(members)
            try:
                done.append(operation(member))
            except DomainError as error:
                refused.append(error.code)
            except Exception as error:  # noqa: BLE001 - any other error fails the test below
                failed.append(f"{operation.__name__}: {type(error).__name__}: {error}")
        return done, refused, failed

    results = run_together(*[lambda seed=seed: worker(seed) for seed in range(THREADS)])

    assert not [r for r in results if isinstance(r, BaseException)], results
    done = [name for ok, _refused, _failed in results for name in ok]
    failed = [line for _ok, _refused, bad in results for line in bad]
    assert failed == []
    assert len(done) >= THREADS, done  # the load did run
    assert {"purchase", "redeem", "reserve", "adjust", "expire"} <= set(done)
    assert list(ledger_mismatches()) == []
    assert not Redemption.objects.filter(status=Redemption.Status.RESERVED).exists()
