"""Period close: finance closes a month; its figures are stored and signed off (who, when).

Months close in order (the first close may be any past month, then each next one), only once
they are over. ``closed_through()`` is the last moment of the last closed month. An entry
dated at or before it would change a closed report, so the ledger's posting checks it
(``dated_in_open_period``): with ``LOYALTY_FINANCE_CLOSED_PERIOD=refuse`` it is refused
(``period_closed``), with ``move`` (the default) it is posted now, in the open period, with a
note of the date it asked for in its explanation. A change of the point value that starts in
a closed month is refused in either mode.

The check costs no query for an entry dated in the current month (no closed month can reach
it: only months that are over close), so the channels' writes are not slowed down.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger.errors import PeriodClosed
from ledger.finance.moments import day_end, month_next
from ledger.models import PeriodClose
from loyalty_site.errors import DomainError


def closed_through() -> datetime | None:
    last = PeriodClose.objects.order_by("-month").values_list("month", flat=True).first()
    return None if last is None else day_end(month_next(last) - timedelta(days=1))


def dated_in_open_period(at: datetime, *, now: datetime | None = None) -> tuple[datetime, dict]:
    """The moment to post an entry asked for ``at`` and the note to add ({} when none)."""
    now = now or timezone.now()
    month_start = timezone.localtime(now).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if at >= month_start:
        return at, {}
    limit = closed_through()
    if limit is None or at > limit:
        return at, {}
    if settings.LOYALTY_FINANCE_CLOSED_PERIOD == "refuse":
        raise PeriodClosed()
    moved = max(now, limit + timedelta(microseconds=1))
    return moved, {"note": "closed_period", "dated": at.isoformat()}


def _figures(month: date) -> dict:
    from ledger.finance.rollforward import rollforward_month

    period = rollforward_month(year=month.year, month=month.month)

    def lines(by_line):
        return {code: [line.points, str(line.money)] for code, line in by_line.items()}

    from ledger.finance.liability import liability_at

    report = liability_at(as_of=period.end)
    return {
        "as_of": period.end.isoformat(),
        "value_per_point": str(report.value.value),
        "currency": report.value.currency,
        "rollforward": lines(period.lines),
        "rollforward_by_tier": {
            (tier.name if tier else ""): lines(by_line) for tier, by_line in period.by_tier
        },
        "by_expiry_month": {
            (m.isoformat() if m else "never"): row.points for m, row in report.by_expiry_month
        },
        "by_tier": {(t.name if t else ""): row.points for t, row in report.by_tier},
        "members_in_debt": report.members_in_debt,
        "debt_points": report.debt_points,
    }


def period_close(*, month: date, actor, note: str = "", now: datetime | None = None) -> PeriodClose:
    """Close ``month`` (any day of it): store its roll-forward and liability, signed off by
    ``actor``."""
    now = now or timezone.now()
    month = month.replace(day=1)
    if day_end(month_next(month) - timedelta(days=1)) >= now:
        raise DomainError(_("Only a month that is over can be closed."), code="invalid_field")
    with transaction.atomic():
        # One close at a time: the last closed month decides which one may close next.
        last = (
            PeriodClose.objects.select_for_update()
            .order_by("-month")
            .values_list("month", flat=True)
            .first()
        )
        if last is not None and month != month_next(last):
            if month <= last:
                raise PeriodClosed(_("This month is closed already."))
            raise DomainError(
                _("Close %(month)s first: months close in order.")
                % {"month": month_next(last).strftime("%Y-%m")},
                code="invalid_field",
            )
        try:
            with transaction.atomic():
                return PeriodClose.objects.create(
                    month=month,
                    closed_at=now,
                    closed_by=actor,
                    note=(note or "").strip(),
                    figures=_figures(month),
                )
        except IntegrityError:
            raise PeriodClosed(_("This month is closed already.")) from None
