"""Forms of the catalogue pages: a reward with its tier prices, voucher code generation and import.

They validate input only; rewards.services saves (and audits) what they accept.
"""

from django import forms
from django.utils.translation import gettext_lazy as _

from members.admin_numbers import column_range
from members.models import Tier
from rewards.models import ChannelKind, Reward

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


class DateTimeLocalInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format=DATETIME_LOCAL, **kwargs)


def _bounded(db_field, **kwargs):
    # Number fields bounded by their column (a 2**31 in an integer column would be a 500).
    if db_field.name == "image_url":
        kwargs["assume_scheme"] = "https"
    return db_field.formfield(**{**column_range(db_field), **kwargs})


class RewardForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        choices=ChannelKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel."),
    )
    visible_tiers = forms.ModelMultipleChoiceField(
        label=_("visible to tiers"),
        queryset=Tier.objects.order_by("rank"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every tier."),
    )
    # The stock the editor was shown; rewards.services.reward_save applies a new stock as the
    # difference to it, so that redemptions made while the form was open stay counted.
    stock_seen = forms.IntegerField(required=False, widget=forms.HiddenInput)
    reason = forms.CharField(
        label=_("reason"),
        max_length=500,
        help_text=_("Why you make this change (kept in the audit log)."),
    )

    class Meta:
        model = Reward
        formfield_callback = _bounded
        fields = (
            "kind",
            "name_en",
            "name_nl",
            "description_en",
            "description_nl",
            "image_url",
            "points",
            "stock",
            "limit_per_member",
            "channels",
            "valid_from",
            "valid_until",
            "sort_order",
            "active",
            "offer_only",
        )
        widgets = {
            "valid_from": DateTimeLocalInput(),
            "valid_until": DateTimeLocalInput(),
            "description_en": forms.Textarea(attrs={"rows": 3}),
            "description_nl": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["visible_tiers"].initial = list(
                self.instance.visible_tiers.values_list("pk", flat=True)
            )
            self.fields["stock_seen"].initial = self.instance.stock
        for name in ("valid_from", "valid_until"):
            self.fields[name].input_formats = [DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class TierPriceForm(forms.Form):
    """One tier's price: the tier is fixed per row, the points are optional (empty: none)."""

    tier = forms.ModelChoiceField(queryset=Tier.objects.all(), widget=forms.HiddenInput)
    points = forms.IntegerField(
        label=_("points cost"), required=False, min_value=1, max_value=2**31 - 1
    )


TierPriceFormSet = forms.formset_factory(TierPriceForm, extra=0, max_num=100, absolute_max=100)


def tier_price_formset(reward: Reward | None, data=None) -> forms.BaseFormSet:
    """A row per tier of the ladder, filled with the reward's tier prices."""
    tiers = list(Tier.objects.order_by("rank"))
    prices = (
        dict(reward.tier_prices.values_list("tier_id", "points")) if reward and reward.pk else {}
    )
    formset = TierPriceFormSet(
        data,
        prefix="tier",
        initial=[{"tier": tier.pk, "points": prices.get(tier.pk)} for tier in tiers],
    )
    for form, tier in zip(formset.forms, tiers, strict=False):
        form.tier_name = tier.name
    return formset


def tier_prices_of(formset) -> dict[int, int]:
    """{tier id: points} of the rows that have a price."""
    return {
        form.cleaned_data["tier"].pk: form.cleaned_data["points"]
        for form in formset.forms
        if form.cleaned_data.get("tier") and form.cleaned_data.get("points")
    }


# Above this many codes a generation runs as a background job with a progress bar.
GENERATE_IN_PAGE_MAX = 1000


class GenerateCodesForm(forms.Form):
    count = forms.IntegerField(label=_("number of codes"), min_value=1, max_value=100_000)
    expires_at = forms.DateTimeField(
        label=_("expires at"),
        required=False,
        widget=DateTimeLocalInput(),
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        help_text=_("Empty: the codes do not expire."),
    )


# An import of a file this large or larger is refused at once (about 100,000 codes in CSV).
IMPORT_MAX_BYTES = 5 * 1024 * 1024


class ImportCodesForm(forms.Form):
    file = forms.FileField(
        label=_("file (CSV or XLSX)"),
        help_text=_(
            "Columns: code, and optionally expires_at (YYYY-MM-DD HH:MM). "
            "Codes that exist already are skipped."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        name = upload.name.lower()
        if not name.endswith((".csv", ".xlsx")):
            raise forms.ValidationError(_("Choose a .csv or .xlsx file."))
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(_("The file is larger than 5 MB; split it."))
        return upload
