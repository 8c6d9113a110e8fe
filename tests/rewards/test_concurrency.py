"""Real concurrency on PostgreSQL: threads, each with its own connection."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from ledger.selectors import balance_summary
from loyalty_site.errors import DomainError
from rewards import services
from rewards.models import Redemption, Reward
from tests.rewards.factories import RewardFactory, VoucherCodeFactory, VoucherRewardFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def run_together(calls) -> list:
    """Start every call at the same moment; return each one's result or DomainError."""
    barrier = threading.Barrier(len(calls))
    results: list = [None] * len(calls)

    def worker(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except DomainError as error:
            results[index] = error
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.fixture(autouse=True)
def _skip_on_sqlite():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")


def test_sixteen_redeemers_of_the_last_five_items(member_with):
    reward = RewardFactory(points=100, stock=5)
    members = [member_with(250) for _ in range(16)]

    results = run_together(
        [
            lambda m=m: services.redemption_redeem(member=m, reward=reward, channel="app")
            for m in members
        ]
    )

    won = [r for r in results if isinstance(r, Redemption)]
    lost = [r for r in results if not isinstance(r, Redemption)]
    assert len(won) == 5
    assert {error.code for error in lost} == {"out_of_stock"}, lost
    assert Reward.objects.get(pk=reward.pk).stock == 0
    assert Redemption.objects.filter(reward=reward, status="confirmed").count() == 5
    balances = sorted(balance_summary(member=m)["balance"] for m in members)
    assert balances == [150] * 5 + [250] * 11


def test_one_member_racing_their_own_limit(member_with):
    member = member_with(10_000)
    reward = RewardFactory(points=100, limit_per_member=2)

    results = run_together(
        [lambda: services.redemption_redeem(member=member, reward=reward) for _ in range(8)]
    )

    assert sum(isinstance(r, Redemption) for r in results) == 2
    assert balance_summary(member=member)["balance"] == 9_800


def test_two_expiry_runs_release_each_reservation_once(member_with):
    reward = RewardFactory(points=100, stock=10)
    members = [member_with(100) for _ in range(10)]
    start = timezone.now()
    for member in members:
        services.redemption_reserve(member=member, reward=reward, now=start)
    assert Reward.objects.get(pk=reward.pk).stock == 0
    later = start + timedelta(hours=1)

    results = run_together([lambda: services.reservations_expire(now=later) for _ in range(2)])

    assert sorted(results) in ([0, 10], [1, 9], [2, 8], [3, 7], [4, 6], [5, 5])
    assert sum(results) == 10
    assert Reward.objects.get(pk=reward.pk).stock == 10
    assert Redemption.objects.filter(status="expired").count() == 10
    for member in members:
        assert balance_summary(member=member) == {
            "balance": 100,
            "pending": 0,
            "held": 0,
            "available": 100,
        }


def test_confirm_racing_expiry_has_one_winner(member_with):
    member = member_with(100)
    reward = RewardFactory(points=100, stock=1)
    start = timezone.now()
    reservation = services.redemption_reserve(member=member, reward=reward, now=start)
    edge = reservation.reserved_until

    results = run_together(
        [
            lambda: services.redemption_confirm(
                redemption=reservation, now=edge - timedelta(seconds=1)
            ),
            lambda: services.reservations_expire(now=edge),
        ]
    )

    reservation.refresh_from_db()
    summary = balance_summary(member=member)
    stock = Reward.objects.get(pk=reward.pk).stock
    if reservation.status == Redemption.Status.CONFIRMED:
        assert results[1] == 0
        assert (summary["balance"], summary["held"], stock) == (0, 0, 0)
    else:
        assert reservation.status == Redemption.Status.EXPIRED
        assert results[0].code == "reservation_expired"
        assert (summary["balance"], summary["held"], stock) == (100, 0, 1)


def test_each_code_is_handed_out_once_under_concurrency(member_with):
    reward = VoucherRewardFactory(points=10)
    VoucherCodeFactory.create_batch(4, reward=reward)
    members = [member_with(100) for _ in range(10)]

    results = run_together(
        [lambda m=m: services.redemption_redeem(member=m, reward=reward) for m in members]
    )

    won = [r for r in results if isinstance(r, Redemption)]
    assert len(won) == 4
    assert {r.code for r in results if not isinstance(r, Redemption)} == {"voucher_pool_empty"}
    assert reward.codes.filter(status="issued").count() == 4
    assert len({r.voucher_code.pk for r in won}) == 4
