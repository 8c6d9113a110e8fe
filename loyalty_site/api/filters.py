"""Query filters of the channel API."""

from datetime import UTC, datetime

from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField


class UtcIsoDateTimeField(IsoDateTimeField):
    # Python reads UTC offsets up to ±23:59, PostgreSQL takes ±15:59 at most: the value goes
    # to the database in UTC. A moment that is valid where it was written but falls outside the
    # calendar in UTC (0001-01-01T00:00+16:00) is before, or after, every entry: it becomes the
    # first (last) moment the calendar has, which filters the same way.
    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except OverflowError:
            edge = datetime.min if value.year == 1 else datetime.max
            return edge.replace(tzinfo=UTC)


class UtcIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcIsoDateTimeField
