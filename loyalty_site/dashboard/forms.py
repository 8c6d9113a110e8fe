"""The dashboard's period chooser: a preset (last 7, 30, 90 days, 12 months) or from–to dates."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from loyalty_site.dashboard.periods import (
    DEFAULT_PRESET,
    MAX_DAYS,
    PRESETS,
    Period,
    period_preset,
)

CUSTOM = "custom"


class PeriodForm(forms.Form):
    period = forms.ChoiceField(
        label=_("Period"),
        initial=DEFAULT_PRESET,
        choices=[
            *((key, label) for key, (label, _days) in PRESETS.items()),
            (CUSTOM, _("From–to")),
        ],
        required=False,
    )
    start = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, today: date, **kwargs):
        super().__init__(*args, **kwargs)
        self.today = today

    def clean(self):
        data = super().clean()
        preset = data.get("period") or (CUSTOM if data.get("start") else DEFAULT_PRESET)
        data["period"] = preset
        if preset != CUSTOM:
            return data
        start, end = data.get("start"), data.get("end") or self.today
        if start is None:
            if "start" not in self.errors:
                self.add_error("start", _("Give the first day of the period."))
            return data
        if end > self.today:
            self.add_error("end", _("The period cannot end after today."))
        elif start > end:
            self.add_error("start", _("The first day must not be after the last day."))
        elif (end - start).days + 1 > MAX_DAYS:
            self.add_error("start", _("Choose at most %(days)d days.") % {"days": MAX_DAYS})
        data["end"] = end
        return data

    def chosen(self) -> Period:
        """The period asked for; the default (last 30 days) while the form has errors."""
        if not self.is_valid():
            return period_preset(DEFAULT_PRESET, today=self.today)
        data = self.cleaned_data
        if data["period"] == CUSTOM:
            return Period(start=data["start"], end=data["end"])
        return period_preset(data["period"], today=self.today)
