"""Breakage: the share of issued points that is never used, per earning cohort.

A cohort is the points earned (earn entries) in one calendar month. From the lot consumptions:

- **actual** breakage = points of the cohort that expired ÷ points issued in it;
- **used** = points of the cohort taken by anything else (redemptions, transfers, staff debits,
  returns); **open** = what the cohort still holds.

**Expected** breakage projects each cohort to expiry: its open points will go the way the points
of *resolved* cohorts went (cohorts whose every lot is past its expiry date, so nothing of them
is open any more): the share ``h`` of their points that expired rather than was used. Expected
breakage of a cohort = (expired + open × h) ÷ issued; the programme's expected redemption rate
is 1 − the expected breakage of all cohorts together. Before any cohort has resolved, ``h`` is
1 − ``LOYALTY_FINANCE_EXPECTED_REDEMPTION``. Finance may record this rate, or one of its own,
as the estimate deferred revenue uses (``ledger.finance.deferred``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Max, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from ledger.finance.liability import _month, zone
from ledger.finance.planner import report_reading
from ledger.models import Entry, Lot, LotConsumption

FOUR = Decimal("0.0001")


@dataclass
class Cohort:
    month: date
    issued: int
    expired: int
    used: int
    open: int
    resolved: bool
    expected_breakage: Decimal = Decimal(0)

    @property
    def actual_breakage(self) -> Decimal:
        return (Decimal(self.expired) / self.issued).quantize(FOUR) if self.issued else Decimal(0)


@dataclass
class Breakage:
    cohorts: list[Cohort]
    expired_share: Decimal  # h: of the points resolved cohorts lost, the share that expired
    from_resolved: bool  # h came from resolved cohorts (else from the setting)
    expected_redemption: Decimal


@report_reading
def breakage(*, now: datetime | None = None) -> Breakage:
    """Every earning cohort up to ``now`` with its actual and expected breakage."""
    now = now or timezone.now()
    lots = Lot.objects.filter(entry__kind=Entry.Kind.EARN, earned_at__lte=now)
    cohorts: dict[date, Cohort] = {}
    for row in (
        lots.annotate(month=TruncMonth("earned_at", tzinfo=zone()))
        .values("month")
        .annotate(issued=Sum("points"), open=Sum("remaining"), last_expiry=Max("expires_at"))
        .order_by("month")
    ):
        month = _month(row["month"])
        resolved = row["last_expiry"] is not None and row["last_expiry"] <= now and not row["open"]
        cohorts[month] = Cohort(month, row["issued"], 0, 0, row["open"], resolved)
    taken: dict[tuple, int] = defaultdict(int)
    for row in (
        LotConsumption.objects.filter(lot__in=lots, at__lte=now)
        .annotate(month=TruncMonth("lot__earned_at", tzinfo=zone()))
        .values("month", "entry__kind")
        .annotate(points=Sum("points"))
        .order_by()
    ):
        taken[(_month(row["month"]), row["entry__kind"] == Entry.Kind.EXPIRE)] += row["points"]
    for month, cohort in cohorts.items():
        cohort.expired = taken[(month, True)]
        cohort.used = taken[(month, False)]
    resolved = [c for c in cohorts.values() if c.resolved]
    lost = sum(c.expired + c.used for c in resolved)
    if lost:
        share = Decimal(sum(c.expired for c in resolved)) / lost
    else:
        share = 1 - Decimal(settings.LOYALTY_FINANCE_EXPECTED_REDEMPTION)
    issued = expected = Decimal(0)
    for cohort in cohorts.values():
        broken = cohort.expired + cohort.open * share
        cohort.expected_breakage = (broken / cohort.issued).quantize(FOUR) if cohort.issued else 0
        issued += cohort.issued
        expected += broken
    rate = (1 - expected / issued).quantize(FOUR) if issued else 1 - share.quantize(FOUR)
    return Breakage(list(cohorts.values()), share.quantize(FOUR), bool(lost), rate)
