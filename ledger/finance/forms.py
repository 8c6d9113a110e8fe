"""The finance page's forms: input is checked here, the services decide."""

from __future__ import annotations

from datetime import date

from django import forms
from django.utils.translation import gettext_lazy as _

from ledger.finance.moments import as_of_parse, day_start


class AsOfForm(forms.Form):
    as_of = forms.CharField(
        label=_("As of"),
        required=False,
        help_text=_("A date (the end of that day) or a date and time (YYYY-MM-DD HH:MM:SS)."),
        widget=forms.TextInput(attrs={"placeholder": "YYYY-MM-DD", "size": 19}),
    )
    period = forms.CharField(
        label=_("Month"),
        required=False,
        help_text=_("The roll-forward's month, YYYY-MM."),
        widget=forms.TextInput(attrs={"placeholder": "YYYY-MM", "size": 7}),
    )

    def clean_as_of(self):
        try:
            return as_of_parse(self.cleaned_data["as_of"])
        except ValueError:
            raise forms.ValidationError(
                _("Give a date as YYYY-MM-DD, or YYYY-MM-DD HH:MM:SS.")
            ) from None

    def clean_period(self):
        return _month_parse(self.cleaned_data["period"], required=False)


def _month_parse(text: str, *, required: bool) -> date | None:
    text = (text or "").strip()
    if not text:
        if required:
            raise forms.ValidationError(_("This field is required."))
        return None
    try:
        return date.fromisoformat(f"{text}-01")
    except ValueError:
        raise forms.ValidationError(_("Give a month as YYYY-MM.")) from None


class CloseForm(forms.Form):
    month = forms.CharField(label=_("Month to close"), help_text="YYYY-MM", max_length=7)
    note = forms.CharField(label=_("Note"), required=False, max_length=255)

    def clean_month(self):
        return _month_parse(self.cleaned_data["month"], required=True)


class ValueForm(forms.Form):
    value = forms.DecimalField(
        label=_("Value of one point"), min_value=0, max_digits=12, decimal_places=6
    )
    valid_from = forms.DateField(label=_("From (start of that day)"))
    reason = forms.CharField(label=_("Reason"), max_length=255)

    def clean_valid_from(self):
        return day_start(self.cleaned_data["valid_from"])


class EstimateForm(forms.Form):
    rate = forms.DecimalField(
        label=_("Expected redemption rate"),
        help_text=_("The share of issued points expected to be redeemed, e.g. 0.80."),
        max_digits=5,
        decimal_places=4,
    )
    valid_from = forms.DateField(label=_("From (start of that day)"))
    reason = forms.CharField(label=_("Reason"), max_length=255)

    def clean_valid_from(self):
        return day_start(self.cleaned_data["valid_from"])


class MemberExportForm(forms.Form):
    as_of = forms.CharField(required=False)
    format = forms.ChoiceField(choices=[("csv", "CSV"), ("xlsx", "XLSX")])

    def clean_as_of(self):
        try:
            return as_of_parse(self.cleaned_data["as_of"])
        except ValueError:
            raise forms.ValidationError(
                _("Give a date as YYYY-MM-DD, or YYYY-MM-DD HH:MM:SS.")
            ) from None
