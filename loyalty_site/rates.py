"""Request rates such as "600/min": a number of requests per second, minute, hour or day.

Read by the settings (LOYALTY_API_RATE), the channel model and the API's throttle; it imports
no models, so the settings can use it.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

_SECONDS = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


def rate_parse(rate: str) -> tuple[int, int]:
    """(requests, seconds) of a rate; ValueError when it is not one."""
    match = _RATE.match(rate.lower())
    if match is None or match.group(2) not in _SECONDS or int(match.group(1)) < 1:
        raise ValueError(f"not a request rate: {rate!r}")
    return int(match.group(1)), _SECONDS[match.group(2)]


def rate_validate(value: str) -> None:
    """Model and form validator: an empty value is left to `blank`."""
    if not value:
        return
    try:
        rate_parse(value)
    except ValueError:
        raise ValidationError(
            _("Give a number of requests per s, min, hour or day, such as 600/min."),
            code="invalid_rate",
        ) from None
