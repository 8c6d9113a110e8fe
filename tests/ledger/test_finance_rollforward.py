"""The roll-forward closes: opening + movements = closing, to the point and to the cent."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import services
from ledger.finance import liability
from ledger.finance.rollforward import Line, rollforward, rollforward_month
from ledger.models import Entry, PointValue
from tests.factories import MemberFactory
from tests.ledger.finance_histories import START, history_run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seed", range(5))
def test_randomised_histories_roll_forward_to_zero_with_a_value_change(seed, settings):
    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    PointValue.objects.create(
        valid_from=START + timedelta(days=40, hours=seed),
        value=Decimal("0.0125"),
        currency="EUR",
        reason="new partner rate",
    )
    end = history_run(seed, steps=90)
    months = []
    month = timezone.localtime(START).date().replace(day=1)
    while months == [] or months[-1].end < end:
        months.append(rollforward_month(year=month.year, month=month.month))
        month = (month + timedelta(days=32)).replace(day=1)
    for period in months:
        assert period.lines["difference"] == Line(0, Decimal(0)), period.start
        for tier, lines in period.by_tier:
            assert lines["difference"] == Line(0, Decimal(0)), (period.start, tier)
        assert period.lines["closing"].points == liability.points_outstanding(as_of=period.end)
    for before, after in zip(months, months[1:], strict=False):
        assert before.lines["closing"] == after.lines["opening"]
        assert {t: ls["closing"] for t, ls in before.by_tier if ls["closing"].points} == {
            t: ls["opening"] for t, ls in after.by_tier if ls["opening"].points
        }
    # Every stretch between two moments something was posted at closes too: a debit dated
    # before the lot it took from opens a gap, however short, that a month can hide.
    moments = sorted(set(Entry.objects.values_list("created_at", flat=True)))
    for after, until in zip(moments, moments[1:], strict=False):
        stretch = rollforward(start=after, end=until)
        assert stretch.lines["difference"] == Line(0, Decimal(0)), (after, until)
    # The whole history as one period closes too.
    whole = rollforward(start=START - timedelta(days=1), end=end)
    assert whole.closes
    assert sum(p.lines["issued"].points for p in months) == whole.lines["issued"].points


def test_a_hand_made_month_shows_each_line():
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100, at=START)
    services.points_redeem(member=member, points=70, at=START + timedelta(days=1))
    services.points_reverse(entry=earn, reason="return", at=START + timedelta(days=2))
    PointValue.objects.create(
        valid_from=START + timedelta(days=3), value=Decimal("0.02"), currency="EUR", reason="x"
    )
    services.points_earn(member=member, points=200, at=START + timedelta(days=4))
    period = rollforward(start=START - timedelta(days=1), end=START + timedelta(days=5))
    points = {code: line.points for code, line in period.lines.items()}
    assert points == {
        "opening": 0,
        "issued": 300,
        "redeemed": -70,
        "expired": 0,
        "adjusted": 0,
        "reversed": -100,
        "transferred": 0,
        "tier_moves": 0,
        "debt": -0,
        "revaluation": 0,
        "closing": 130,
        "difference": 0,
    }
    money = {code: line.money for code, line in period.lines.items() if line.money}
    # Before the change: 100 and -70 and -100 at 0.01, debt 70 then repaid at 0.02.
    assert money == {
        "issued": Decimal("1.00") + Decimal("4.00"),
        "redeemed": Decimal("-0.70"),
        "reversed": Decimal("-1.00"),
        "debt": Decimal("0.70") - Decimal("1.40"),
        "closing": Decimal("2.60"),
    }
    assert period.closes


def test_the_roll_forward_reads_a_bounded_number_of_queries(
    settings, django_assert_max_num_queries
):
    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    history_run(8, steps=30, members=2)
    with django_assert_max_num_queries(16):
        rollforward(start=START, end=START + timedelta(days=60))
    history_run(9, steps=90, members=6)
    with django_assert_max_num_queries(16):
        rollforward(start=START, end=START + timedelta(days=60))
