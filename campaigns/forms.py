"""Forms shared by the campaigns app's pages and its admin."""

import copy

from django import forms
from django.db.models import Q, QuerySet
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from campaigns import conditions
from campaigns.models import Campaign, EarningRule, Segment
from campaigns.simulator import period_refusal
from members.models import Tier


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


# -- the earning-rule editor -------------------------------------------------------------------


def _names(values) -> list[str]:
    """Trimmed, non-empty, each once, in the order given."""
    return list(dict.fromkeys(v.strip() for v in values if isinstance(v, str) and v.strip()))


class NamesPicker(forms.Widget):
    """SKUs, categories, stores or channels: a checkbox per value (the picked ones and those
    seen in purchases) and a text box for others, separated by commas, with suggestions from
    `suggest_url` (htmx) when given. Never raw JSON."""

    template_name = "campaigns/rules/names_picker.html"

    def __init__(self, *, choices=(), suggest_url: str = "", attrs=None):
        super().__init__(attrs)
        self.choices = list(choices)
        self.suggest_url = suggest_url

    def format_value(self, value):
        if isinstance(value, str):
            value = [value]
        return _names(value or [])

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        picked = context["widget"]["value"]
        offered = list(dict.fromkeys([*picked, *self.choices]))
        context["widget"].update(
            options=[(option, option in picked) for option in offered],
            other_name=f"{name}_other",
            suggest_url=self.suggest_url,
        )
        return context

    def _render(self, template_name, context, renderer=None):
        # The project's engine (templates/), not the form renderer's own one.
        return mark_safe(render_to_string(template_name, context))  # noqa: S308 - a template

    def id_for_label(self, id_):
        return f"{id_}_other" if id_ else id_

    def value_from_datadict(self, data, files, name):
        picked = data.getlist(name) if hasattr(data, "getlist") else data.get(name) or []
        other = data.get(f"{name}_other") or ""
        return _names([*picked, *other.split(",")])

    def value_omitted_from_data(self, data, files, name):
        return False  # nothing ticked is "any", not "unchanged"


class NamesField(forms.Field):
    widget = NamesPicker

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value) -> list[str]:
        if isinstance(value, str):
            value = value.split(",")
        return _names(value or [])

    def has_changed(self, initial, data) -> bool:
        return _names(initial or []) != self.to_python(data)


class _NotRequiredInBrowser(forms.TextInput):
    def use_required_attribute(self, initial) -> bool:
        return False


def _time_input():
    return forms.TimeInput(attrs={"type": "time"}, format="%H:%M")


def _datetime_input():
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")


class EarningRuleEditForm(forms.ModelForm):
    """The back office's rule editor: pickers for every condition, validated by the model
    (EarningRule.full_clean and campaigns.conditions), like the admin's form.

    `choices` holds the values the pickers offer (campaigns.selectors.rule_condition_values);
    `suggest_urls` the autocomplete address of each picker that has one. A rule that may not be
    changed (services.rule_editable) is shown with every field disabled. A change of a saved
    rule needs a reason, unless the form only feeds the simulator (`for_simulation`).
    """

    skus = NamesField(
        label=_("SKUs"), help_text=_("Only lines with these SKUs count. None: any SKU.")
    )
    categories = NamesField(
        label=capfirst(_("categories")),
        help_text=_("Only lines of these categories count. None: any category."),
    )
    stores = NamesField(label=capfirst(_("stores")), help_text=_("None: any store."))
    channels = NamesField(label=capfirst(_("channels")), help_text=_("None: any channel."))
    days_of_week = forms.TypedMultipleChoiceField(
        label=capfirst(_("days of week")),
        choices=conditions.WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: any day."),
    )
    rate = forms.DecimalField(
        label=_("Points per currency unit"),
        min_value=0,
        max_digits=9,
        decimal_places=4,
        initial=0,
        help_text=_("Kind “points per currency unit”: e.g. 1 is a point per euro."),
    )
    multiplier = forms.DecimalField(
        label=capfirst(_("multiplier")),
        min_value=1,
        max_digits=6,
        decimal_places=2,
        initial=1,
        help_text=_("Kind “multiplier”: 2 doubles the base rate's points."),
    )
    bonus_points = forms.IntegerField(
        label=capfirst(_("bonus points")),
        min_value=0,
        initial=0,
        help_text=_("Kind “fixed bonus”: points per matching purchase."),
    )
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=255,
        required=False,
        help_text=_("Kept in the audit log with your name."),
        # Required on save (checked here), not in the browser: the simulator posts the form too,
        # and a browser would hold that back for an empty reason.
        widget=_NotRequiredInBrowser,
    )

    class Meta:
        model = EarningRule
        fields = [
            "name",
            "description",
            "active",
            "campaign",
            "priority",
            "stacks",
            "kind",
            "rate",
            "multiplier",
            "bonus_points",
            "rounding",
            "skus",
            "categories",
            "stores",
            "channels",
            "tiers",
            "segments",
            "days_of_week",
            "time_from",
            "time_until",
            "starts_at",
            "ends_at",
            "min_spend",
            "first_purchase_only",
            "birthday",
            "anniversary",
            "cap_per_purchase",
            "cap_per_member",
            "cap_period",
            "budget_points",
        ]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "tiers": forms.CheckboxSelectMultiple,
            "segments": forms.CheckboxSelectMultiple,
            "time_from": _time_input(),
            "time_until": _time_input(),
            "starts_at": _datetime_input(),
            "ends_at": _datetime_input(),
        }
        help_texts = {
            "time_from": _("Purchases from this time of day; with “until” earlier, the window "
                           "spans midnight (22:00 until 02:00)."),
            "time_until": _("Purchases before this time of day."),
            "starts_at": _("Empty: from now on."),
            "ends_at": _("Empty: no end."),
            "min_spend": _("The purchase's amount (of the counted lines) must reach this."),
            "cap_per_purchase": _("At most this many points from this rule on one purchase."),
            "cap_per_member": _("At most this many points from this rule per member per period."),
            "budget_points": _("The rule stops when it has given this many points in total. "
                               "Empty: no budget."),
            "tiers": _("Only members of these tiers. None ticked: any tier."),
            "segments": _("Only members of one of these segments, judged at the purchase. "
                          "None ticked: any member."),
        }  # fmt: skip

    def __init__(
        self,
        *args,
        choices: dict[str, list[str]] | None = None,
        suggest_urls: dict[str, str] | None = None,
        read_only: bool = False,
        for_simulation: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        choices = choices or {}
        suggest_urls = suggest_urls or {}
        for name in ("skus", "categories", "stores", "channels"):
            widget = self.fields[name].widget
            widget.choices = choices.get(name, [])
            widget.suggest_url = suggest_urls.get(name, "")
        # Only draft earning campaigns take new rules; the rule's own campaign stays choosable.
        campaigns = Q(kind=Campaign.Kind.EARNING, status=Campaign.Status.DRAFT)
        if self.instance.campaign_id is not None:
            campaigns |= Q(pk=self.instance.campaign_id)
        self.fields["campaign"].queryset = Campaign.objects.filter(campaigns).order_by("name")
        self.fields["campaign"].help_text = _(
            "A draft earning campaign's rule runs only while the campaign runs, for its "
            "audience. Empty: a rule of the programme, for every member."
        )
        self.fields["tiers"].queryset = Tier.objects.order_by("rank")
        self.fields["segments"].queryset = Segment.objects.order_by("name")
        # A change says why; a simulation changes nothing.
        if self.instance.pk is not None and not for_simulation:
            self.fields["reason"].required = True
        self.read_only = read_only
        if read_only:
            for field in self.fields.values():
                field.disabled = True

    def draft(self) -> EarningRule:
        """The rule as edited, unsaved, for the simulator (campaigns.simulator.rule_simulate):
        the saved rule's pk or 0, no campaign, its tiers and segments readable without a query.
        Call after is_valid()."""
        rule = copy.copy(self.instance)
        rule.pk = self.instance.pk or 0
        rule.campaign = None
        rule._prefetched_objects_cache = {
            "tiers": _fixed(Tier.objects.all(), self.cleaned_data["tiers"]),
            "segments": _fixed(Segment.objects.all(), self.cleaned_data["segments"]),
        }
        return rule


def _fixed(queryset, items) -> QuerySet:
    # What prefetch_related leaves on an instance: an evaluated queryset. An unsaved rule has
    # no rows to read its tiers from, so they are handed in the same way.
    rows = list(items)
    fixed = queryset.filter(pk__in=[row.pk for row in rows])
    fixed._result_cache = rows
    fixed._prefetch_done = True
    return fixed


def rule_draft_saved(rule: EarningRule) -> EarningRule:
    """A saved rule as the simulator replays it (see EarningRuleEditForm.draft): no campaign,
    its tiers and segments read now."""
    draft = copy.copy(rule)
    draft.campaign = None
    draft._prefetched_objects_cache = {
        "tiers": _fixed(Tier.objects.all(), rule.tiers.all()),
        "segments": _fixed(Segment.objects.all(), rule.segments.all()),
    }
    return draft
