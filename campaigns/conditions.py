"""What an earning rule's stored conditions may hold, read the same way everywhere.

The list conditions are JSON columns, so nothing in the column type stops a fixture, a shell or an
old admin form from storing `["sat"]` or `{"a": 1}`. The model validates with these (admin and
`full_clean`), and `selectors.rule_spec` reads stored rows with them, so a row that slipped past
validation is skipped with a warning instead of failing every purchase.
"""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

WEEKDAYS = [
    (0, _("Monday")),
    (1, _("Tuesday")),
    (2, _("Wednesday")),
    (3, _("Thursday")),
    (4, _("Friday")),
    (5, _("Saturday")),
    (6, _("Sunday")),
]


def names(value) -> frozenset[str]:
    """A stored list of SKUs, categories, stores or channels; ValueError when it is not one."""
    if not isinstance(value, list):
        raise ValueError(f"not a list: {value!r:.80}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"not a non-empty text: {item!r:.80}")
    return frozenset(value)


def weekdays(value) -> frozenset[int]:
    """A stored list of weekdays, 0 = Monday; ValueError when it is not one."""
    if not isinstance(value, list):
        raise ValueError(f"not a list: {value!r:.80}")
    for item in value:
        # bool is an int in Python; True is no weekday.
        if type(item) is not int or not 0 <= item <= 6:
            raise ValueError(f"not a weekday 0-6: {item!r:.80}")
    return frozenset(value)


def validate_names(value) -> None:
    try:
        names(value)
    except ValueError:
        raise ValidationError(
            _('Enter a list of non-empty texts, for example ["A1", "B2"].'), code="invalid_names"
        ) from None


def validate_weekdays(value) -> None:
    try:
        weekdays(value)
    except ValueError:
        raise ValidationError(
            _("Enter a list of weekdays from 0 (Monday) to 6 (Sunday)."), code="invalid_weekdays"
        ) from None
