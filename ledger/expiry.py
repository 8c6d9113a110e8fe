"""The expiry policy: when a lot earned at a given moment expires.

Read from settings on every call, so a test's ``override_settings`` and a restarted process both
see the current policy. Period ends are computed in the programme's time zone (a "year" ends at
midnight on 1 January local time), then stored in UTC like every datetime.
"""

from datetime import datetime

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

POLICIES = {"rolling", "fixed", "none"}


def expiry_for(earned_at: datetime) -> datetime | None:
    policy = settings.LOYALTY_EXPIRY_POLICY
    if policy not in POLICIES:
        raise ImproperlyConfigured(f"LOYALTY_EXPIRY_POLICY must be one of {sorted(POLICIES)}")
    if policy == "none":
        return None
    months = settings.LOYALTY_EXPIRY_MONTHS
    if policy == "rolling":
        # relativedelta clamps the day: 31 March + 1 month is 30 April, not an error.
        return earned_at + relativedelta(months=months)
    period = settings.LOYALTY_EXPIRY_PERIOD_MONTHS
    if period not in (1, 3, 6, 12):
        raise ImproperlyConfigured("LOYALTY_EXPIRY_PERIOD_MONTHS must be 1, 3, 6 or 12")
    kept_until = timezone.localtime(earned_at + relativedelta(months=months))
    # The first period boundary strictly after kept_until.
    period_start_month = (kept_until.month - 1) // period * period + 1
    period_start = kept_until.replace(
        month=period_start_month, day=1, hour=0, minute=0, second=0, microsecond=0
    )
    end = period_start.replace(tzinfo=None) + relativedelta(months=period)
    return timezone.make_aware(end)
