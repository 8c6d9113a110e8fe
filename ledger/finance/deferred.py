"""Deferred revenue for points, IFRS 15 style.

When points are issued, part of the sale's price is allocated to them and deferred: points
issued × the stand-alone selling price of a point (the point value in force then,
``ledger.finance.values``) × the expected redemption rate (finance's estimate in force at the
period's end, ``RedemptionEstimate``, else ``LOYALTY_FINANCE_EXPECTED_REDEMPTION``). It is
recognised as revenue in proportion to the points redeemed over the points expected to be
redeemed, cumulatively::

    recognised to date = allocated to date × min(1, redeemed to date ÷ (issued to date × rate))

and a period's revenue is the change of "recognised to date". When the estimate changes, the
cumulative figure is recomputed with the new rate: the difference it makes to what was already
recognised is the period's **catch-up** (shown on its own line), not spread over later periods.
Issued means earn entries, redeemed means redemption entries; expiries are the breakage the
rate already expects, so they are not recognised on their own.

Worked example (value 0.01 a point, rate 0.80): January issues 1,000 points and 400 are
redeemed: allocated 1,000 × 0.01 × 0.80 = 8.00; recognised 8.00 × 400 ÷ 800 = 4.00; deferred
4.00. In February 200 more are redeemed and finance lowers the rate to 0.75: recognised to date
8.00 × 600 ÷ 750 = 6.40, so February's revenue is 2.40, of which catch-up 6.40 − 8.00 × 600 ÷ 800
= 0.40; deferred 1.60.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import TruncMonth
from django.utils.translation import gettext as _

from ledger.errors import ReasonRequired
from ledger.finance.liability import _month, zone
from ledger.finance.moments import day_end, month_next
from ledger.finance.planner import report_reading
from ledger.finance.values import Value, value_default
from ledger.models import Entry, PointValue, RedemptionEstimate
from loyalty_site.errors import DomainError

CENT = Decimal("0.01")


def rate_at(moment: datetime) -> Decimal:
    row = (
        RedemptionEstimate.objects.filter(valid_from__lte=moment)
        .order_by("-valid_from", "-id")
        .values_list("rate", flat=True)
        .first()
    )
    return Decimal(row if row is not None else settings.LOYALTY_FINANCE_EXPECTED_REDEMPTION)


def estimate_record(*, rate: Decimal, valid_from: datetime, reason: str, actor):
    """Finance's new expected redemption rate from ``valid_from`` on (who, when, why)."""
    from ledger.errors import PeriodClosed
    from ledger.finance.closing import closed_through

    if not (reason or "").strip():
        raise ReasonRequired(fields={"reason": _("A reason is required.")})
    if not (Decimal(0) < rate <= 1):
        raise DomainError(_("The rate must be above 0 and at most 1."), code="invalid_rate")
    limit = closed_through()
    if limit is not None and valid_from <= limit:
        raise PeriodClosed()
    with transaction.atomic():
        return RedemptionEstimate.objects.create(
            valid_from=valid_from, rate=rate, reason=reason.strip(), recorded_by=actor
        )


@dataclass
class Period:
    month: date
    issued: int
    redeemed: int
    rate: Decimal
    allocated: Decimal
    recognised: Decimal  # this period's revenue, catch-up included
    catch_up: Decimal
    deferred: Decimal  # balance at the period's end


def _monthly(kind: str) -> dict[date, int]:
    rows = (
        Entry.objects.filter(kind=kind)
        .annotate(month=TruncMonth("created_at", tzinfo=zone()))
        .values("month")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    return {_month(row["month"]): row["total"] for row in rows}


def _issued_money(month: date, points: int, values: list[Value]) -> Decimal:
    """The value of the points earned in ``month``, each at the value in force then: one query
    per change of value inside the month, none otherwise."""
    start = day_end(month - timedelta(days=1))
    end = day_end(month_next(month) - timedelta(days=1))

    def at(moment):
        return next((v for v in values if v.valid_from <= moment), value_default())

    inside = sorted(v.valid_from for v in values if start < v.valid_from <= end)
    if not inside:
        return Decimal(points) * at(end).value
    amount, after = Decimal(0), start
    for until in [*(moment - timedelta(microseconds=1) for moment in inside), end]:
        part = (
            Entry.objects.filter(
                kind=Entry.Kind.EARN, created_at__gt=after, created_at__lte=until
            ).aggregate(total=Sum("amount"))["total"]
            or 0
        )
        amount += Decimal(part) * at(until).value
        after = until
    return amount


def _recognised(allocated: Decimal, redeemed: int, issued: int, rate: Decimal) -> Decimal:
    if not issued:
        return Decimal(0)
    return allocated * min(Decimal(1), Decimal(redeemed) / (Decimal(issued) * rate))


@report_reading
def deferred_revenue(*, first: date, last: date) -> list[Period]:
    """One row per month from ``first``'s month to ``last``'s, cumulative from the start of
    the programme (the months before ``first`` are counted, not shown)."""
    issued_by_month = _monthly(Entry.Kind.EARN)
    redeemed_by_month = _monthly(Entry.Kind.REDEEM)
    months = set(issued_by_month) | set(redeemed_by_month)
    if not months:
        return []
    values = [
        Value(*row)
        for row in PointValue.objects.order_by("-valid_from", "-id").values_list(
            "value", "currency", "valid_from"
        )
    ]
    estimates = list(
        RedemptionEstimate.objects.order_by("-valid_from", "-id").values_list("valid_from", "rate")
    )
    default_rate = Decimal(settings.LOYALTY_FINANCE_EXPECTED_REDEMPTION)
    month, last = min(months), last.replace(day=1)
    rows = []
    allocated, issued, redeemed = Decimal(0), 0, 0
    recognised_before, rate_before = Decimal(0), None
    while month <= last:
        end = day_end(month_next(month) - timedelta(days=1))
        rate = next((r for since, r in estimates if since <= end), default_rate)
        points = issued_by_month.get(month, 0)
        used = -redeemed_by_month.get(month, 0)
        value = _issued_money(month, points, values)
        allocated += value * rate
        issued += points
        redeemed += used
        to_date = _recognised(allocated, redeemed, issued, rate)
        old_rate = rate_before if rate_before is not None else rate
        catch_up = to_date - _recognised(allocated, redeemed, issued, old_rate)
        if month >= first.replace(day=1):
            rows.append(
                Period(
                    month=month,
                    issued=points,
                    redeemed=used,
                    rate=rate,
                    allocated=(value * rate).quantize(CENT),
                    recognised=(to_date - recognised_before).quantize(CENT),
                    catch_up=catch_up.quantize(CENT),
                    deferred=(allocated - to_date).quantize(CENT),
                )
            )
        recognised_before, rate_before = to_date, rate
        month = month_next(month)
    return rows
