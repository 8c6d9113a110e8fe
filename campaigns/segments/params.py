"""Parameters the conditions share: lists of names, windows of dates, min/max bounds.

Windows are days in the programme's time zone (settings.TIME_ZONE), whatever the server's:

* relative, ``{"days": 30}``: today and the 29 days before it, from local midnight 29 days ago
  until the end of today (so "the last 1 day" is today);
* absolute, ``{"from": "2026-01-01", "until": "2026-01-31"}``: from local midnight of ``from``
  to the end of ``until`` (both included); either end may be left out.

Bounds are ``{"min": a, "max": b}``, both included, at least one given.
"""

from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from django.db.models import DecimalField, Q, Value
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.segments import invalid

MAX_DAYS = 3660


def names(node: dict, key: str = "in") -> list[str]:
    value = node.get(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item.strip() for item in value)
    ):
        raise invalid(
            _("Condition “%(name)s” needs “%(key)s”: a list of names."),
            name=node["condition"],
            key=key,
        )
    return value


def ids(node: dict, key: str = "in") -> list[int]:
    value = node.get(key)
    if not isinstance(value, list) or not value or not all(type(i) is int for i in value):
        raise invalid(
            _("Condition “%(name)s” needs “%(key)s”: a list of ids."),
            name=node["condition"],
            key=key,
        )
    return value


def days(node: dict, key: str = "days", *, minimum: int = 0, maximum: int = MAX_DAYS) -> int:
    value = node.get(key)
    if type(value) is not int or not minimum <= value <= maximum:
        raise invalid(
            _("Condition “%(name)s” needs “%(key)s”: a whole number from %(min)s to %(max)s."),
            name=node["condition"],
            key=key,
            min=minimum,
            max=maximum,
        )
    return value


def _date(node: dict, value) -> date:
    try:
        return date.fromisoformat(value)
    except (TypeError, ValueError):
        raise invalid(
            _("Condition “%(name)s”: “%(value)s” is not a date (YYYY-MM-DD)."),
            name=node["condition"],
            value=str(value)[:20],
        ) from None


def check_window(node: dict, key: str = "window", *, required: bool = False) -> None:
    window = node.get(key)
    if window is None and not required:
        return
    name = node["condition"]
    if not isinstance(window, dict) or not window:
        raise invalid(
            _('Condition “%(name)s” needs a window: {"days": n} or {"from": date, "until": date}.'),
            name=name,
        )
    if "days" in window:
        if set(window) != {"days"}:
            raise invalid(_("Condition “%(name)s”: a window is relative or absolute."), name=name)
        days({"condition": name, **window}, minimum=1)
        return
    if not set(window) <= {"from", "until"}:
        raise invalid(_("Condition “%(name)s”: a window has only “from” and “until”."), name=name)
    start = _date(node, window["from"]) if "from" in window else None
    until = _date(node, window["until"]) if "until" in window else None
    if start and until and until < start:
        raise invalid(_("Condition “%(name)s”: the window ends before it starts."), name=name)


def local_midnight(day: date) -> datetime:
    """The start of `day` in the programme's time zone, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time()), timezone.get_default_timezone())


def today(now: datetime) -> date:
    return timezone.localtime(now, timezone.get_default_timezone()).date()


def window_bounds(window: dict | None, now: datetime) -> tuple[datetime | None, datetime | None]:
    """(start, end) of a checked window; `end` is exclusive; None: open on that side."""
    if window is None:
        return None, None
    if "days" in window:
        day = today(now)
        return local_midnight(day - timedelta(days=window["days"] - 1)), local_midnight(
            day + timedelta(days=1)
        )
    start = local_midnight(date.fromisoformat(window["from"])) if "from" in window else None
    end = (
        local_midnight(date.fromisoformat(window["until"]) + timedelta(days=1))
        if "until" in window
        else None
    )
    return start, end


def window_q(field: str, window: dict | None, now: datetime) -> Q:
    start, end = window_bounds(window, now)
    q = Q()
    if start is not None:
        q &= Q(**{f"{field}__gte": start})
    if end is not None:
        q &= Q(**{f"{field}__lt": end})
    return q


def check_bounds(node: dict, *, integer: bool = True, required: bool = True) -> None:
    name = node["condition"]
    given = [key for key in ("min", "max") if key in node]
    if not given:
        if required:
            raise invalid(_("Condition “%(name)s” needs “min”, “max” or both."), name=name)
        return
    values = []
    for key in given:
        value = node[key]
        ok = type(value) is int if integer else _number(value) is not None
        if not ok:
            raise invalid(
                _("Condition “%(name)s”: “%(key)s” must be a number."), name=name, key=key
            )
        values.append(_number(value))
    if len(values) == 2 and values[0] > values[1]:
        raise invalid(_("Condition “%(name)s”: “min” is above “max”."), name=name)


def _number(value) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def bounds_q(expression, node: dict, *, default_min=None) -> Q:
    """`expression` between the node's min and max (both included)."""
    low = node.get("min", default_min)
    q = Q()
    if low is not None:
        q &= Q(GreaterThanOrEqual(expression, _value(low)))
    if "max" in node:
        q &= Q(LessThanOrEqual(expression, _value(node["max"])))
    return q


def _value(number) -> Value:
    # Whole numbers stay integers: SQLite would compare a count with a text parameter as text.
    if type(number) is int:
        return Value(number)
    return Value(_number(number), output_field=DecimalField(max_digits=14, decimal_places=2))
