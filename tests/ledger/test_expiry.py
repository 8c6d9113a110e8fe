from datetime import UTC, datetime

from django.utils import timezone

from ledger.expiry import expiry_for


def test_expiry_policies(settings):
    earned = datetime(2026, 3, 31, 10, tzinfo=UTC)
    settings.LOYALTY_EXPIRY_POLICY = "rolling"
    settings.LOYALTY_EXPIRY_MONTHS = 1
    # 31 March + 1 month is the last day of April.
    assert expiry_for(earned) == datetime(2026, 4, 30, 10, tzinfo=UTC)
    settings.LOYALTY_EXPIRY_POLICY = "fixed"
    settings.LOYALTY_EXPIRY_MONTHS = 12
    settings.LOYALTY_EXPIRY_PERIOD_MONTHS = 12
    # Kept at least until 2027-03-31, then to the end of 2027 (local time).
    assert timezone.localtime(expiry_for(earned)).replace(tzinfo=None) == datetime(2028, 1, 1)
    settings.LOYALTY_EXPIRY_POLICY = "none"
    assert expiry_for(earned) is None


def test_fixed_policy_ends_on_the_first_period_boundary_after_the_kept_months(settings):
    settings.LOYALTY_EXPIRY_POLICY = "fixed"
    settings.LOYALTY_EXPIRY_MONTHS = 12
    settings.LOYALTY_EXPIRY_PERIOD_MONTHS = 3
    local = timezone.get_current_timezone()
    # Kept until 2027-03-31: the quarter that holds it ends on 1 April 2027.
    earned = datetime(2026, 3, 31, 10, tzinfo=local)
    assert timezone.localtime(expiry_for(earned)).replace(tzinfo=None) == datetime(2027, 4, 1)
    # Kept until mid-December 2027: the quarter ends at the turn of the year.
    earned = datetime(2026, 12, 15, 10, tzinfo=local)
    assert timezone.localtime(expiry_for(earned)).replace(tzinfo=None) == datetime(2028, 1, 1)
