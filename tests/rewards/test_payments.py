"""Paying with points (rewards/services/payments.py)."""

from decimal import Decimal

import pytest

from ledger import errors as ledger_errors
from ledger.selectors import balance_summary
from rewards import services
from rewards.errors import (
    DiscountTooSmall,
)
from rewards.models import Redemption

pytestmark = pytest.mark.django_db


def available(member) -> int:
    return balance_summary(member=member)["available"]


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
