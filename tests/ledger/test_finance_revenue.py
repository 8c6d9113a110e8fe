"""Breakage per earning cohort and deferred revenue against a hand-computed example."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import services
from ledger.finance.breakage import breakage
from ledger.finance.deferred import deferred_revenue, estimate_record, rate_at
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

JAN = datetime(2025, 1, 10, 12, tzinfo=timezone.get_fixed_timezone(0))
FEB = datetime(2025, 2, 10, 12, tzinfo=timezone.get_fixed_timezone(0))


def test_the_worked_example_with_a_change_of_the_expected_rate(settings):
    """Value 0.01, rate 0.80; January: 1,000 issued, 400 redeemed; February: 200 redeemed and
    the rate lowered to 0.75. By hand: allocated 8.00; January recognises 8.00 × 400/800 =
    4.00 (deferred 4.00); February 8.00 × 600/750 − 4.00 = 2.40, of which catch-up
    6.40 − 8.00 × 600/800 = 0.40 (deferred 1.60)."""
    settings.LOYALTY_POINT_VALUE = Decimal("0.01")
    settings.LOYALTY_FINANCE_EXPECTED_REDEMPTION = Decimal("0.80")
    member = MemberFactory()
    services.points_earn(member=member, points=1000, at=JAN)
    services.points_redeem(member=member, points=400, at=JAN + timedelta(days=1))
    services.points_redeem(member=member, points=200, at=FEB)
    estimate_record(rate=Decimal("0.75"), valid_from=FEB, reason="Q1 review", actor=UserFactory())
    jan, feb = deferred_revenue(first=date(2025, 1, 1), last=date(2025, 2, 1))
    assert (jan.issued, jan.redeemed, jan.rate) == (1000, 400, Decimal("0.80"))
    assert (jan.allocated, jan.recognised, jan.catch_up, jan.deferred) == (
        Decimal("8.00"),
        Decimal("4.00"),
        Decimal("0.00"),
        Decimal("4.00"),
    )
    assert (feb.issued, feb.redeemed, feb.rate) == (0, 200, Decimal("0.75"))
    assert (feb.allocated, feb.recognised, feb.catch_up, feb.deferred) == (
        Decimal("0.00"),
        Decimal("2.40"),
        Decimal("0.40"),
        Decimal("1.60"),
    )


def test_an_estimate_needs_a_reason_and_a_rate_in_range():
    from loyalty_site.errors import DomainError

    for rate, reason in ((Decimal("0.5"), " "), (Decimal("0"), "x"), (Decimal("1.2"), "x")):
        with pytest.raises(DomainError):
            estimate_record(rate=rate, valid_from=JAN, reason=reason, actor=None)
    assert rate_at(JAN) == Decimal("0.80")


def test_breakage_per_cohort_actual_and_expected(settings):
    settings.LOYALTY_EXPIRY_MONTHS = 1
    first, second = MemberFactory(), MemberFactory()
    services.points_earn(member=first, points=100, at=JAN)
    services.points_redeem(member=first, points=60, at=JAN + timedelta(days=2))
    services.points_expire(now=JAN + timedelta(days=40))  # 40 of January's 100 expire
    services.points_earn(member=second, points=200, at=FEB + timedelta(days=30))
    services.points_redeem(member=second, points=50, at=FEB + timedelta(days=31))
    result = breakage(now=FEB + timedelta(days=35))
    jan, mar = result.cohorts
    assert (jan.month, jan.issued, jan.expired, jan.used, jan.open, jan.resolved) == (
        date(2025, 1, 1),
        100,
        40,
        60,
        0,
        True,
    )
    assert jan.actual_breakage == Decimal("0.4000")
    assert (mar.month, mar.issued, mar.used, mar.open, mar.resolved) == (
        date(2025, 3, 1),
        200,
        50,
        150,
        False,
    )
    # The resolved cohort lost 40 of 100 to expiry: March's 150 open points are projected so.
    assert result.expired_share == Decimal("0.4000")
    assert mar.expected_breakage == Decimal("0.3000")
    assert result.expected_redemption == (1 - Decimal(40 + 60) / 300).quantize(Decimal("0.0001"))
