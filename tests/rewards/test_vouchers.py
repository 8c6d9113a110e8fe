"""Voucher codes (rewards/services/vouchers.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from ledger.selectors import balance_summary
from rewards import services
from rewards.errors import (
    VoucherNotFound,
    VoucherNotUsable,
    VoucherPoolEmpty,
)
from rewards.models import Redemption, VoucherCode
from tests.rewards.factories import (
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


def test_discarding_codes_removes_only_unused_ones():
    reward = VoucherRewardFactory()
    codes = services.voucher_codes_generate(reward=reward, count=3)
    VoucherCode.objects.filter(pk=codes[0].pk).update(status=VoucherCode.Status.EXPIRED)
    assert services.voucher_codes_discard(codes=VoucherCode.objects.filter(reward=reward)) == 2
    assert list(VoucherCode.objects.filter(reward=reward).values_list("pk", flat=True)) == [
        codes[0].pk
    ]
