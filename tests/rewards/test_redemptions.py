"""Redeem, reserve, confirm, cancel, expire (rewards/services/redemptions.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger import errors as ledger_errors
from ledger import services as ledger_services
from ledger.selectors import balance_summary
from rewards import services
from rewards.errors import (
    RedemptionConfirmed,
    ReservationExpired,
)
from rewards.models import Redemption, VoucherCode
from tests.rewards.factories import (
    RewardFactory,
    VoucherCodeFactory,
    VoucherRewardFactory,
)

pytestmark = pytest.mark.django_db


def available(member) -> int:
    return balance_summary(member=member)["available"]


def test_redeem_without_enough_points_writes_nothing(member_with):
    member = member_with(50)
    reward = RewardFactory(points=100, stock=1)
    with pytest.raises(ledger_errors.InsufficientPoints) as caught:
        services.redemption_redeem(member=member, reward=reward)
    assert caught.value.code == "insufficient_points"
    assert not Redemption.objects.exists()
    reward.refresh_from_db()
    assert reward.stock == 1
    assert available(member) == 50


def test_an_account_in_debt_cannot_redeem(member_with):
    member = member_with(0)
    earned = ledger_services.points_earn(member=member, points=100, reason="purchase")
    ledger_services.points_redeem(member=member, points=60)
    ledger_services.points_reverse(entry=earned, reason="returned")  # 40 - 100 = -60
    assert balance_summary(member=member)["balance"] == -60
    with pytest.raises(ledger_errors.AccountInDebt) as caught:
        services.redemption_redeem(member=member, reward=RewardFactory(points=1))
    assert caught.value.code == "account_in_debt"
    with pytest.raises(ledger_errors.AccountInDebt) as caught:
        services.points_pay(member=member, points=1)
    assert caught.value.code == "account_in_debt"
    assert not Redemption.objects.exists()


def test_reserve_holds_points_and_confirm_debits_them(member_with):
    member = member_with(500)
    reward = RewardFactory(points=200, stock=2)
    reservation = services.redemption_reserve(member=member, reward=reward, channel="pos")
    assert reservation.status == Redemption.Status.RESERVED
    assert balance_summary(member=member)["held"] == 200
    assert available(member) == 300

    confirmed = services.redemption_confirm(redemption=reservation)

    assert confirmed.status == Redemption.Status.CONFIRMED
    assert balance_summary(member=member) == {
        "balance": 300,
        "pending": 0,
        "held": 0,
        "available": 300,
    }
    # Confirming again changes nothing.
    assert services.redemption_confirm(redemption=reservation).entry_id == confirmed.entry_id
    assert balance_summary(member=member)["balance"] == 300


def test_cancellation_after_confirmation_is_refused(member_with):
    member = member_with(500)
    reward = RewardFactory(points=200, stock=1)
    redemption = services.redemption_redeem(member=member, reward=reward)
    with pytest.raises(RedemptionConfirmed) as caught:
        services.redemption_cancel(redemption=redemption)
    assert caught.value.code == "redemption_confirmed"
    redemption.refresh_from_db()
    assert redemption.status == Redemption.Status.CONFIRMED
    reward.refresh_from_db()
    assert reward.stock == 0
    assert available(member) == 300


def test_a_late_confirmation_is_refused(member_with):
    member = member_with(500)
    reservation = services.redemption_reserve(member=member, reward=RewardFactory(points=100))
    with pytest.raises(ReservationExpired) as caught:
        services.redemption_confirm(
            redemption=reservation, now=reservation.reserved_until + timedelta(seconds=1)
        )
    assert caught.value.code == "reservation_expired"
    assert balance_summary(member=member)["balance"] == 500


def test_reservation_expiry_returns_points_and_stock_exactly_once(member_with, settings):
    settings.LOYALTY_RESERVATION_MINUTES = 15
    member = member_with(500)
    reward = VoucherRewardFactory(points=200, stock=1)
    VoucherCodeFactory(reward=reward)
    start = timezone.now()
    reservation = services.redemption_reserve(member=member, reward=reward, now=start)
    assert reservation.reserved_until == start + timedelta(minutes=15)

    assert services.reservations_expire(now=start + timedelta(minutes=14)) == 0
    assert available(member) == 300

    later = start + timedelta(minutes=16)
    assert services.reservations_expire(now=later) == 1
    assert services.reservations_expire(now=later) == 0

    reservation.refresh_from_db()
    assert reservation.status == Redemption.Status.EXPIRED
    assert balance_summary(member=member) == {
        "balance": 500,
        "pending": 0,
        "held": 0,
        "available": 500,
    }
    reward.refresh_from_db()
    assert reward.stock == 1
    assert reward.codes.get().status == VoucherCode.Status.UNUSED
    with pytest.raises(ReservationExpired) as caught:
        services.redemption_confirm(redemption=reservation)
    assert caught.value.code == "reservation_expired"


def test_expiry_after_the_ledger_released_the_hold_still_returns_stock(member_with):
    member = member_with(500)
    reward = RewardFactory(points=200, stock=1)
    start = timezone.now()
    services.redemption_reserve(member=member, reward=reward, now=start)
    later = start + timedelta(hours=1)
    ledger_services.holds_expire(now=later)

    assert services.reservations_expire(now=later) == 1

    reward.refresh_from_db()
    assert reward.stock == 1
    assert available(member) == 500
