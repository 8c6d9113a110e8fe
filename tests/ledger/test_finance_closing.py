"""Point values with dated changes, and period close: a closed report never changes."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from ledger import services
from ledger.errors import PeriodClosed
from ledger.finance import liability
from ledger.finance.closing import closed_through, period_close
from ledger.finance.rollforward import rollforward_month
from ledger.finance.values import point_value_change, value_at
from ledger.models import Entry, PeriodClose, PointValue
from loyalty_site.errors import DomainError
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

MARCH = datetime(2025, 3, 10, 12, tzinfo=timezone.get_fixed_timezone(0))


def test_a_value_change_applies_from_its_date_and_records_who_and_why():
    finance = UserFactory()
    change = point_value_change(
        value=Decimal("0.012"), valid_from=MARCH, reason="new partner rate", actor=finance
    )
    assert (change.recorded_by, change.reason, change.currency) == (
        finance,
        "new partner rate",
        "EUR",
    )
    assert value_at(MARCH - timedelta(seconds=1)).value == Decimal("0.01")
    assert value_at(MARCH).value == Decimal("0.012")
    with pytest.raises(DomainError):
        point_value_change(value=Decimal("0.02"), valid_from=MARCH, reason="again", actor=finance)
    with pytest.raises(DomainError):
        point_value_change(value=Decimal("0.02"), valid_from=MARCH, reason=" ", actor=finance)
    assert PointValue.objects.count() == 1


def test_closing_a_month_stores_its_figures_signed_off():
    finance = UserFactory()
    member = MemberFactory()
    services.points_earn(member=member, points=300, at=MARCH)
    close = period_close(month=date(2025, 3, 1), actor=finance, note="March books")
    assert close.closed_by == finance
    assert close.figures["rollforward"]["closing"] == [300, "3.00"]
    assert close.figures["rollforward"]["difference"] == [0, "0.00"]
    assert close.figures["by_tier"] == {"": 300}
    assert timezone.localtime(closed_through()).date() == date(2025, 3, 31)
    with pytest.raises(DomainError, match="closed already"):
        period_close(month=date(2025, 3, 1), actor=finance)
    with pytest.raises(DomainError, match="2025-04"):
        period_close(month=date(2025, 6, 1), actor=finance)
    with pytest.raises(DomainError, match="over"):
        period_close(month=timezone.localdate(), actor=finance)


@pytest.mark.parametrize("mode", ["move", "refuse"])
def test_an_entry_dated_in_a_closed_month_never_changes_its_report(mode, settings):
    settings.LOYALTY_FINANCE_CLOSED_PERIOD = mode
    finance = UserFactory()
    member = MemberFactory()
    earn = services.points_earn(member=member, points=300, at=MARCH)
    period_close(month=date(2025, 3, 1), actor=finance)
    stored = PeriodClose.objects.get().figures
    late = MARCH + timedelta(days=2)
    if mode == "refuse":
        with pytest.raises(PeriodClosed):
            services.points_redeem(member=member, points=100, at=late)
        with pytest.raises(PeriodClosed):
            services.points_earn_batch(member=member, earns=[{"points": 5, "at": late}])
        assert Entry.objects.count() == 1
    else:
        moved = services.points_redeem(member=member, points=100, at=late)
        assert moved.created_at > closed_through()
        assert moved.explanation == [{"note": "closed_period", "dated": late.isoformat()}]
        (batch,) = services.points_earn_batch(member=member, earns=[{"points": 5, "at": late}])
        assert batch.created_at > closed_through()
    services.points_reverse(entry=earn, points=10, reason="return", at=timezone.now())
    again = rollforward_month(year=2025, month=3)
    assert again.lines["closing"].points == stored["rollforward"]["closing"][0] == 300
    assert liability.by_expiry_month(as_of=closed_through()) == {date(2027, 3, 1): 300}
    with pytest.raises(PeriodClosed):
        point_value_change(value=Decimal("0.02"), valid_from=late, reason="late", actor=finance)


def test_an_entry_of_this_month_needs_no_query_for_the_check(django_assert_num_queries):
    from ledger.finance.closing import dated_in_open_period

    now = timezone.now()
    with django_assert_num_queries(0):
        assert dated_in_open_period(now) == (now, {})
