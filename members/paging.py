"""What the back office's long lists share: a date range read in the programme's time zone and
the keyset link to the next page (a row's moment and id, never an offset or a count).

The lists (ledger entries, redemptions, the shipping list) filter on a moment and page by
(moment, id); their forms derive from ``DateRangeForm`` and name their cursor field.
"""

from datetime import UTC, date, datetime, time, timedelta

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def keyset_cursor(moment: datetime, pk: int) -> str:
    """A page link's position: the row's moment (µs since 1970) and its id."""
    return f"{(moment - EPOCH) // timedelta(microseconds=1)}.{pk}"


def keyset_parse(value: str, *, broken) -> tuple[datetime, int] | None:
    """The (moment, id) of a page link (None for none); a link that is not one is refused
    with the ``broken`` message, as a form error."""
    if not value:
        return None
    moment, _dot, pk = value.partition(".")
    try:
        return EPOCH + timedelta(microseconds=int(moment)), int(pk)
    except (ValueError, OverflowError):
        raise forms.ValidationError(broken) from None


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the programme's time zone, in UTC; a moment beyond the
    calendar in UTC (1 January of year 1 east of Greenwich) is its first or last moment, which
    filters the same way (as the API's ledger filter does)."""
    try:
        return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone()).astimezone(
            UTC
        )
    except OverflowError:
        return (datetime.min if day.year == 1 else datetime.max).replace(tzinfo=UTC)


def member_field() -> forms.CharField:
    """The lists' member box: what ``members.selectors.member_ids_search`` finds a member by."""
    return forms.CharField(
        label=gettext_lazy("Member"),
        required=False,
        max_length=254,
        help_text=gettext_lazy("Member id, card number, e-mail, phone, external id or name."),
    )


class DateRangeForm(forms.Form):
    """From and until a day (that day included), the last not before the first."""

    start = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=gettext_lazy("Until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("This day included."),
    )

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", gettext_lazy("The last day comes before the first."))
        return cleaned

    def moments(self) -> tuple[datetime | None, datetime | None]:
        """The range as moments: from the first day's start, before the day after the last."""
        start, end = self.cleaned_data.get("start"), self.cleaned_data.get("end")
        return (
            day_start(start) if start else None,
            day_start(end + timedelta(days=1)) if end and end < date.max else None,
        )
