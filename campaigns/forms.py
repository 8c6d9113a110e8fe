"""Forms shared by the campaigns app's pages and its admin."""

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.simulator import period_refusal


class SimulationPeriodForm(forms.Form):
    """A past period to replay (the rules' simulator and a draft campaign's), refused the same
    way as the command refuses it (campaigns.simulator.period_refusal)."""

    start = forms.DateField(
        label=_("From"), widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )
    end = forms.DateField(
        label=_("Until (inclusive)"),
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end"):
            refusal = period_refusal(
                first=cleaned["start"], last=cleaned["end"], today=timezone.localdate()
            )
            if refusal:
                raise forms.ValidationError(refusal)
        return cleaned
