"""Number fields on admin forms bounded by their column, whatever the database.

PostgreSQL refuses 2,147,483,648 in an integer column with a database error (a 500), and SQLite
stores it, so the value breaks later. Bounding the form field refuses it at the form, with
Django's translated "less than or equal to" message. Lives in members, the lowest app, so every
app's admin can use it.
"""

from decimal import Decimal

from django.db import models

_INTEGER_MAX = {
    "SmallIntegerField": 2**15 - 1,
    "PositiveSmallIntegerField": 2**15 - 1,
    "IntegerField": 2**31 - 1,
    "PositiveIntegerField": 2**31 - 1,
    "BigIntegerField": 2**63 - 1,
    "PositiveBigIntegerField": 2**63 - 1,
}


def column_range(db_field) -> dict:
    """min_value/max_value for the form field of a number column; {} for anything else."""
    if db_field.choices:
        return {}
    if isinstance(db_field, models.DecimalField):
        places = db_field.decimal_places
        largest = Decimal(10) ** (db_field.max_digits - places) - Decimal(10) ** -places
        return {"min_value": -largest, "max_value": largest}
    largest = _INTEGER_MAX.get(db_field.get_internal_type())
    if largest is None or not isinstance(db_field, models.IntegerField):
        return {}
    positive = db_field.get_internal_type().startswith("Positive")
    return {"min_value": 0 if positive else -largest, "max_value": largest}


class NumbersInRange:
    """ModelAdmin/inline mixin: every number field's form field is bounded by its column."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        return super().formfield_for_dbfield(
            db_field, request, **{**column_range(db_field), **kwargs}
        )
