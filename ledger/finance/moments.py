"""What "as of" means in finance's reports.

A date alone means the end of that day, a date and time the end of that second, both in the
programme's time zone (``TIME_ZONE``). Every report takes the resulting moment and counts what
was posted at or before it (``<= as_of``), so "as of 31 March" includes the last second of 31
March and "as of 1 April" starts where it ended.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.utils import timezone

END_OF_SECOND = timedelta(microseconds=999_999)


def day_end(day: date) -> datetime:
    """The last moment of ``day`` in the programme's time zone."""
    start = timezone.make_aware(datetime.combine(day + timedelta(days=1), time()))
    return start - timedelta(microseconds=1)


def day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time()))


def second_end(moment: datetime) -> datetime:
    """The end of the second ``moment`` is in (naive means the programme's time zone)."""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment.replace(microsecond=0) + END_OF_SECOND


def as_of_parse(text: str | None, *, now: datetime | None = None) -> datetime:
    """``YYYY-MM-DD`` → end of that day; ``YYYY-MM-DD HH:MM[:SS]`` (or with ``T``) → end of that
    second; empty → now. Raises ``ValueError`` on anything else."""
    text = (text or "").strip()
    if not text:
        return now or timezone.now()
    if len(text) == 10:
        return day_end(date.fromisoformat(text))
    return second_end(datetime.fromisoformat(text.replace(" ", "T")))


def month_start(year: int, month: int) -> date:
    return date(year, month, 1)


def month_next(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)
