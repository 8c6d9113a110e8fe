"""Paying part of a purchase with points: a discount worth at most what the points are worth."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger.errors import InvalidPoints
from members.models import Member
from rewards.errors import (
    DiscountTooSmall,
)
from rewards.models import Redemption
from rewards.services.redemptions import _redemption_open

CENT = Decimal("0.01")


@dataclass(frozen=True)
class Discount:
    amount: Decimal
    currency: str
    points: int
    redemption: Redemption


def points_value(*, points: int) -> Decimal:
    """Money value of points: points × LOYALTY_POINT_VALUE, rounded DOWN to whole cents, so a
    discount never exceeds what the burned points are worth."""
    return (Decimal(points) * settings.LOYALTY_POINT_VALUE).quantize(CENT, rounding=ROUND_DOWN)


@transaction.atomic
def points_pay(
    *,
    member: Member,
    points: int,
    channel: str = "",
    reference: str = "",
    now: datetime | None = None,
) -> Discount:
    """Pay with points at a till: burn `points` and return the discount they are worth."""
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise InvalidPoints(fields={"points": _("Must be a positive whole number.")})
    amount = points_value(points=points)
    if amount <= 0:
        raise DiscountTooSmall(fields={"points": _("Worth less than one cent.")})
    redemption = _redemption_open(
        member=member,
        reward=None,
        points=points,
        channel=channel,
        channel_kind="",
        reference=reference,
        shipping_address="",
        now=now or timezone.now(),
        reserve=False,
        discount_amount=amount,
        currency=settings.LOYALTY_CURRENCY,
    )
    return Discount(
        amount=amount, currency=settings.LOYALTY_CURRENCY, points=points, redemption=redemption
    )
