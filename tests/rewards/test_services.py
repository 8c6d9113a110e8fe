from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import errors as ledger_errors
from ledger import services as ledger_services
from ledger.selectors import balance_summary
from rewards import services
from rewards.errors import (
    DiscountTooSmall,
    FulfilmentTransition,
    LimitReached,
    OutOfStock,
    RedemptionConfirmed,
    ReservationExpired,
    RewardUnavailable,
    VoucherNotFound,
    VoucherNotUsable,
    VoucherPoolEmpty,
)
from rewards.models import ChannelKind, Redemption, Reward, VoucherCode
from tests.rewards.factories import (
    ProductRewardFactory,
    RewardFactory,
    TierFactory,
    VoucherCodeFactory,
    VoucherRewardFactory,
)

pytestmark = pytest.mark.django_db


def available(member) -> int:
    return balance_summary(member=member)["available"]


def test_redeem_in_one_step_debits_points_takes_stock_and_hands_out_a_code(member_with):
    member = member_with(500)
    reward = VoucherRewardFactory(points=200, stock=3)
    code = VoucherCodeFactory(reward=reward)

    redemption = services.redemption_redeem(member=member, reward=reward, channel="webshop")

    assert redemption.status == Redemption.Status.CONFIRMED
    assert redemption.entry.amount == -200
    assert balance_summary(member=member) == {
        "balance": 300,
        "pending": 0,
        "held": 0,
        "available": 300,
    }
    reward.refresh_from_db()
    assert reward.stock == 2
    code.refresh_from_db()
    assert code.status == VoucherCode.Status.ISSUED
    assert code.redemption == redemption


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


def test_tier_price_applies_to_members_of_that_tier(member_with):
    gold = TierFactory(name="Gold")
    member = member_with(500, tier=gold)
    reward = RewardFactory(points=300)
    reward.tier_prices.create(tier=gold, points=150)

    redemption = services.redemption_redeem(member=member, reward=reward)

    assert redemption.points == 150
    assert available(member) == 350
    assert services.reward_cost(reward=reward, member=member_with(0)) == 300


@pytest.mark.parametrize(
    "change",
    [
        {"active": False},
        {"valid_from": timezone.now() + timedelta(days=1)},
        {"valid_until": timezone.now() - timedelta(seconds=1)},
        {"channels": [ChannelKind.APP]},
    ],
)
def test_a_reward_out_of_sight_cannot_be_redeemed(member_with, change):
    member = member_with(500)
    reward = RewardFactory(points=100, **change)
    with pytest.raises(RewardUnavailable) as caught:
        services.redemption_redeem(member=member, reward=reward, channel_kind=ChannelKind.POS)
    assert caught.value.code == "reward_unavailable"
    assert available(member) == 500


def test_tier_visibility_is_enforced_at_redemption(member_with):
    silver, gold = TierFactory(name="Silver"), TierFactory(name="Gold")
    reward = RewardFactory(points=100)
    reward.visible_tiers.set([gold])
    with pytest.raises(RewardUnavailable) as caught:
        services.redemption_redeem(member=member_with(500, tier=silver), reward=reward)
    assert caught.value.code == "reward_unavailable"
    with pytest.raises(RewardUnavailable) as caught:
        services.redemption_redeem(member=member_with(500), reward=reward)
    assert caught.value.code == "reward_unavailable"
    assert services.redemption_redeem(member=member_with(500, tier=gold), reward=reward)


def test_per_member_limit_counts_reserved_and_confirmed_but_not_cancelled(member_with):
    member = member_with(1000)
    reward = RewardFactory(points=100, limit_per_member=2)
    services.redemption_redeem(member=member, reward=reward)
    reservation = services.redemption_reserve(member=member, reward=reward)
    with pytest.raises(LimitReached) as caught:
        services.redemption_redeem(member=member, reward=reward)
    assert caught.value.code == "limit_reached"

    services.redemption_cancel(redemption=reservation)
    services.redemption_redeem(member=member, reward=reward)
    # Another member has their own allowance.
    services.redemption_redeem(member=member_with(100), reward=reward)
    assert available(member) == 800


def test_out_of_stock_is_refused(member_with):
    reward = RewardFactory(points=10, stock=1)
    services.redemption_redeem(member=member_with(100), reward=reward)
    member = member_with(100)
    with pytest.raises(OutOfStock) as caught:
        services.redemption_redeem(member=member, reward=reward)
    assert caught.value.code == "out_of_stock"
    assert available(member) == 100


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


def test_cancel_returns_points_stock_and_code(member_with):
    member = member_with(500)
    reward = VoucherRewardFactory(points=200, stock=1)
    code = VoucherCodeFactory(reward=reward)
    reservation = services.redemption_reserve(member=member, reward=reward)
    code.refresh_from_db()
    assert code.status == VoucherCode.Status.ISSUED

    services.redemption_cancel(redemption=reservation)

    reservation.refresh_from_db()
    assert reservation.status == Redemption.Status.CANCELLED
    assert available(member) == 500
    reward.refresh_from_db()
    assert reward.stock == 1
    code.refresh_from_db()
    assert (code.status, code.redemption) == (VoucherCode.Status.UNUSED, None)
    # Cancelling twice is harmless and returns nothing twice.
    services.redemption_cancel(redemption=reservation)
    reward.refresh_from_db()
    assert reward.stock == 1
    assert available(member) == 500


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


def test_an_empty_code_pool_is_a_clear_error_and_writes_nothing(member_with):
    member = member_with(500)
    reward = VoucherRewardFactory(points=100)
    VoucherCodeFactory(reward=reward, expires_at=timezone.now() - timedelta(days=1))
    with pytest.raises(VoucherPoolEmpty) as caught:
        services.redemption_redeem(member=member, reward=reward)
    assert caught.value.code == "voucher_pool_empty"
    assert caught.value.status == 409
    assert not Redemption.objects.exists()
    assert balance_summary(member=member)["held"] == 0
    assert available(member) == 500


def test_codes_are_handed_out_once_soonest_expiry_first(member_with):
    reward = VoucherRewardFactory(points=10)
    later = VoucherCodeFactory(reward=reward, expires_at=timezone.now() + timedelta(days=60))
    sooner = VoucherCodeFactory(reward=reward, expires_at=timezone.now() + timedelta(days=5))
    first = services.redemption_redeem(member=member_with(100), reward=reward)
    second = services.redemption_redeem(member=member_with(100), reward=reward)
    assert first.voucher_code == sooner
    assert second.voucher_code == later
    with pytest.raises(VoucherPoolEmpty):
        services.redemption_redeem(member=member_with(100), reward=reward)


def test_a_channel_marks_an_issued_code_used_once(member_with):
    reward = VoucherRewardFactory(points=10)
    code = VoucherCodeFactory(reward=reward, code="ABCD-EFGH-JKMN")
    services.redemption_redeem(member=member_with(100), reward=reward)

    used = services.voucher_use(code=" abcd-efgh-jkmn ", channel="pos-utrecht")

    assert used.pk == code.pk
    assert used.status == VoucherCode.Status.USED
    assert used.used_channel == "pos-utrecht"
    with pytest.raises(VoucherNotUsable) as caught:
        services.voucher_use(code="ABCD-EFGH-JKMN")
    assert caught.value.code == "voucher_used"
    with pytest.raises(VoucherNotFound):
        services.voucher_use(code="NOPE-NOPE-NOPE")


def test_an_unissued_or_expired_code_cannot_be_used(member_with):
    reward = VoucherRewardFactory(points=10)
    VoucherCodeFactory(reward=reward, code="UNUSED-1")
    with pytest.raises(VoucherNotUsable) as caught:
        services.voucher_use(code="UNUSED-1")
    assert caught.value.code == "voucher_not_issued"

    soon = timezone.now() + timedelta(days=1)
    VoucherCodeFactory(reward=reward, code="SOON-1", expires_at=soon)
    services.redemption_redeem(member=member_with(100), reward=reward)
    with pytest.raises(VoucherNotUsable) as caught:
        services.voucher_use(code="SOON-1", now=soon + timedelta(minutes=1))
    assert caught.value.code == "voucher_expired"
    assert services.voucher_codes_expire(now=soon + timedelta(minutes=1)) == 1
    assert VoucherCode.objects.get(code="SOON-1").status == VoucherCode.Status.EXPIRED


def test_generated_codes_join_the_pool():
    reward = VoucherRewardFactory()
    created = services.voucher_codes_generate(reward=reward, count=250)
    assert len(created) == 250
    assert reward.codes.filter(status=VoucherCode.Status.UNUSED).count() == 250


@pytest.mark.parametrize(
    ("point_value", "points", "discount"),
    [
        ("0.01", 250, "2.50"),
        ("0.01", 1, "0.01"),
        ("0.0125", 3, "0.03"),  # 0.0375 is rounded down, never up
        ("0.0125", 4, "0.05"),
        ("0.005", 3, "0.01"),  # 0.015 -> 0.01
        ("0.333", 10, "3.33"),  # 3.33
        ("0.2", 7, "1.40"),
    ],
)
def test_pay_with_points_rounds_the_discount_down_to_the_cent(
    member_with, settings, point_value, points, discount
):
    settings.LOYALTY_POINT_VALUE = Decimal(point_value)
    settings.LOYALTY_CURRENCY = "EUR"
    member = member_with(1000)

    paid = services.points_pay(member=member, points=points, channel="pos", reference="bon-1")

    assert paid.amount == Decimal(discount)
    assert paid.amount.as_tuple().exponent == -2
    assert paid.currency == "EUR"
    assert available(member) == 1000 - points
    redemption = paid.redemption
    assert (redemption.reward, redemption.points, redemption.status) == (
        None,
        points,
        Redemption.Status.CONFIRMED,
    )
    assert redemption.discount_amount == Decimal(discount)


def test_pay_with_points_refuses_a_discount_worth_nothing(member_with, settings):
    settings.LOYALTY_POINT_VALUE = Decimal("0.004")
    member = member_with(100)
    with pytest.raises(DiscountTooSmall) as caught:
        services.points_pay(member=member, points=2)
    assert caught.value.code == "discount_too_small"
    assert available(member) == 100
    with pytest.raises(ledger_errors.InsufficientPoints) as caught:
        services.points_pay(member=member, points=101)
    assert caught.value.code == "insufficient_points"


def test_physical_rewards_go_through_fulfilment(member_with):
    member = member_with(1000, profile={"address": "Damrak 1\n1012 LG Amsterdam"})
    reward = ProductRewardFactory(points=300, stock=10)
    redemption = services.redemption_redeem(member=member, reward=reward)
    assert redemption.fulfilment_status == Redemption.FulfilmentStatus.TO_SHIP
    assert redemption.shipping_address == "Damrak 1\n1012 LG Amsterdam"

    with pytest.raises(FulfilmentTransition) as caught:
        services.fulfilment_set(redemption=redemption, status="delivered")
    assert caught.value.code == "fulfilment_transition"
    services.fulfilment_set(redemption=redemption, status="shipped", tracking_code="3SABC123")
    services.fulfilment_set(redemption=redemption, status="delivered")
    services.fulfilment_set(redemption=redemption, status="returned")
    redemption.refresh_from_db()
    assert redemption.fulfilment_status == "returned"
    assert redemption.tracking_code == "3SABC123"

    given = services.redemption_redeem(
        member=member, reward=reward, shipping_address="Postbus 5, 3500 AA Utrecht"
    )
    assert given.shipping_address == "Postbus 5, 3500 AA Utrecht"
    assert (
        services.redemption_redeem(member=member, reward=RewardFactory(points=1)).fulfilment_status
        == ""
    )


def test_database_refuses_negative_stock():
    from django.db import IntegrityError, transaction

    reward = RewardFactory(stock=0)
    with pytest.raises(IntegrityError), transaction.atomic():
        Reward.objects.filter(pk=reward.pk).update(stock=-1)


def test_discarding_codes_removes_only_unused_ones():
    reward = VoucherRewardFactory()
    codes = services.voucher_codes_generate(reward=reward, count=3)
    VoucherCode.objects.filter(pk=codes[0].pk).update(status=VoucherCode.Status.EXPIRED)
    assert services.voucher_codes_discard(codes=VoucherCode.objects.filter(reward=reward)) == 2
    assert list(VoucherCode.objects.filter(reward=reward).values_list("pk", flat=True)) == [
        codes[0].pk
    ]
