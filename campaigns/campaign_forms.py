"""Forms of marketing's segment builder and campaign builder pages (campaigns/views/segments.py,
campaigns/views/campaigns.py).

The segment builder edits a segment's JSON tree as plain form fields: every part of the tree is
a *node* with an id, listed in document order by hidden ``node`` inputs, each with its parent
(``<id>-parent``), its type (``<id>-type``: all, any, not or condition) and, for a condition, its
kind (``<id>-condition``) and parameters (``<id>-<param>``, drawn from
campaigns.segments.fields). Rows added with htmx get fresh random ids, so the server never has
to renumber the page; `definition_from_post` rebuilds the tree from whatever the form holds, and
`campaigns.segments.validate` judges it.
"""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns import segments
from campaigns.models import Campaign, CampaignOffer, Channel, MessageTemplate
from campaigns.segments import fields as segment_fields
from campaigns.services import lifecycle
from campaigns.simulator import period_refusal

# == The segment builder =========================================================================

ROOT = "root"
GROUP_TYPES = ("all", "any", "not")
CONDITION = "condition"
# What a new condition row starts as: a consent, whose first purpose is already a valid choice.
NEW_CONDITION = "consent"
NODE_ID = re.compile(r"^[a-z][a-z0-9]{0,15}$")
# More parts than any segment needs; a forged form with more is cut off here (validate judges
# the rest), so a request cannot make the server build an enormous tree.
MAX_NODES = 300

GROUP_LABELS = {
    "all": _("All of these (and)"),
    "any": _("Any of these (or)"),
    "not": _("Not: leave out who matches all of these"),
}


@dataclass
class BuilderParam:
    name: str
    label: str
    widget: str
    input_name: str
    value: object
    choices: list[tuple[str, str]] = field(default_factory=list)
    help: str = ""


@dataclass
class BuilderNode:
    id: str
    parent: str
    type: str
    condition: str = ""
    params: list[BuilderParam] = field(default_factory=list)
    children: list[BuilderNode] = field(default_factory=list)

    @property
    def is_group(self) -> bool:
        return self.type != CONDITION

    @property
    def is_root(self) -> bool:
        return self.id == ROOT


class Choices:
    """Choices read from the database once per page, however many rows need them."""

    def __init__(self):
        self._cache: dict = {}

    def __call__(self, param: segment_fields.Param) -> list[tuple[str, str]]:
        if param.choices is None:
            return []
        if param.choices not in self._cache:
            self._cache[param.choices] = param.choices()
        return self._cache[param.choices]


def new_node_id() -> str:
    return "x" + secrets.token_hex(5)


def condition_node(
    node_id: str, parent: str, condition: str, values: dict, choices: Choices
) -> BuilderNode:
    """A condition row with its parameter inputs, filled with `values` (the form's answers)."""
    spec = segment_fields.FIELDS.get(condition)
    params = []
    for param in spec.params if spec else ():
        value = values.get(param.name, [] if param.widget == segment_fields.MULTI else "")
        options = list(choices(param))
        if param.widget == segment_fields.MULTI:
            value = [str(v) for v in value] if isinstance(value, list) else []
            # A stored value no longer among the choices (a tier renamed) stays visible.
            known = {key for key, _label in options}
            options += [(v, v) for v in value if v not in known]
        params.append(
            BuilderParam(
                name=param.name,
                label=param.label,
                widget=param.widget,
                input_name=f"{node_id}-{param.name}",
                value=value,
                choices=options,
                help=param.help,
            )
        )
    return BuilderNode(
        id=node_id, parent=parent, type=CONDITION, condition=condition, params=params
    )


def builder_tree(definition, choices: Choices | None = None) -> BuilderNode:
    """The builder's nodes for a stored definition (a bare condition at the top becomes the
    only part of an "all" group)."""
    choices = choices or Choices()
    counter = iter(range(1, 10_000))

    def build(node, node_id: str, parent: str) -> BuilderNode:
        if isinstance(node, dict):
            for group in GROUP_TYPES:
                if group in node:
                    parts = node[group]
                    if group == "not":
                        # {"not": {"all": [a, b]}} is shown as a "not" of a and b.
                        inner = parts if isinstance(parts, dict) else {}
                        parts = inner["all"] if list(inner) == ["all"] else [inner]
                    built = BuilderNode(id=node_id, parent=parent, type=group)
                    built.children = [
                        build(part, f"n{next(counter)}", node_id)
                        for part in (parts if isinstance(parts, list) else [])
                    ]
                    return built
            name = str(node.get("condition", ""))
            values = segment_fields.condition_from_node(node)
            return condition_node(node_id, parent, name, values, choices)
        return condition_node(node_id, parent, "", {}, choices)

    if not isinstance(definition, dict) or not any(g in definition for g in GROUP_TYPES):
        definition = {"all": [definition]} if definition else {"all": []}
    return build(definition, ROOT, "")


def _node_values(data, node_id: str, condition: str) -> dict:
    spec = segment_fields.FIELDS.get(condition)
    values = {}
    for param in spec.params if spec else ():
        key = f"{node_id}-{param.name}"
        if param.widget == segment_fields.MULTI:
            values[param.name] = data.getlist(key)
        else:
            values[param.name] = data.get(key, "")
    return values


def definition_from_post(data) -> dict:
    """The JSON tree the builder's form describes (not validated: see segments.validate).

    Raises ValidationError only when the form holds no tree at all.
    """
    ids = [i for i in dict.fromkeys(data.getlist("node")) if NODE_ID.match(i)][:MAX_NODES]
    if ROOT not in ids:
        raise ValidationError(_("The form holds no segment; reload the page."), code="no_tree")
    children = defaultdict(list)
    for node_id in ids:
        if node_id != ROOT:
            children[data.get(f"{node_id}-parent", "")].append(node_id)

    def build(node_id: str, depth: int) -> dict:
        kind = data.get(f"{node_id}-type", "")
        if kind == CONDITION:
            name = data.get(f"{node_id}-condition", "")
            return segment_fields.condition_to_node(name, _node_values(data, node_id, name))
        # Deeper than validate allows: stop here, validate names the problem.
        parts = (
            [build(child, depth + 1) for child in children[node_id]]
            if depth <= segments.MAX_DEPTH
            else [{"all": []}]
        )
        if kind == "not":
            return {"not": parts[0] if len(parts) == 1 else {"all": parts}}
        if kind in ("all", "any"):
            return {kind: parts}
        return {"group": parts}  # a forged type: validate refuses it

    return build(ROOT, 0)


class SegmentForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    description = forms.CharField(
        label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    reason = forms.CharField(
        label=_("Reason for the change"),
        max_length=255,
        required=False,
        help_text=_("Kept in the audit log."),
    )


# == The campaign builder ========================================================================

S = Campaign.Status


def editable_fields(campaign: Campaign | None) -> frozenset[str]:
    """The fields the campaign's status lets a marketer change (the lifecycle's own sets)."""
    if campaign is None or campaign.pk is None or campaign.status == S.DRAFT:
        return lifecycle.DRAFT_FIELDS
    if campaign.status in (S.ACTIVE, S.PAUSED):
        return lifecycle.RUNNING_FIELDS
    return lifecycle.FREE_FIELDS


class LocalDateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%dT%H:%M", **kwargs)


class MinuteDateTimeField(forms.DateTimeField):
    """A moment to the minute (as a datetime-local input shows it): a stored moment with seconds
    is not "changed" by a form that posts it back as shown."""

    def has_changed(self, initial, data):
        try:
            value = self.to_python(data)
        except ValidationError:
            return True

        def minute(moment):
            return moment.replace(second=0, microsecond=0) if moment else None

        return minute(initial) != minute(value)


class CampaignForm(forms.ModelForm):
    """A campaign's fields, only those its status lets change (see `editable_fields`).

    The control group is asked as a percentage (the model keeps basis points). Posting a field
    the status does not let change (a forged request: the page does not show it) is refused
    with an error rather than ignored; the lifecycle service refuses it again in any case.
    """

    control_percent = forms.DecimalField(
        label=_("Control group (%)"),
        min_value=Decimal(0),
        max_value=Decimal(50),
        decimal_places=2,
        initial=Decimal(10),
        help_text=_("Share of the audience held out to measure the campaign against; at most 50."),
    )

    class Meta:
        model = Campaign
        fields = [
            "name",
            "description",
            "kind",
            "segment",
            "starts_at",
            "ends_at",
            "frequency_capped",
            "budget_points",
            "budget_money",
            "member_cap_points",
            "member_cap_period",
        ]
        field_classes = {"starts_at": MinuteDateTimeField, "ends_at": MinuteDateTimeField}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "starts_at": LocalDateTimeInput(),
            "ends_at": LocalDateTimeInput(),
        }

    ORDER = [
        "name",
        "description",
        "kind",
        "segment",
        "starts_at",
        "ends_at",
        "control_percent",
        "frequency_capped",
        "budget_points",
        "budget_money",
        "member_cap_points",
        "member_cap_period",
    ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.editable = editable_fields(self.instance)
        if self.instance.pk is not None:
            # 1000 / 100 is Decimal("10"), 1250 / 100 Decimal("12.5"): no exponent to show.
            self.fields["control_percent"].initial = (
                Decimal(self.instance.control_basis_points) / 100
            )
        self.fields["segment"].empty_label = _("Every member")
        for name in ("starts_at", "ends_at"):
            self.fields[name].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        self.locked = [name for name in self.ORDER if _model_field(name) not in self.editable]
        for name in self.locked:
            del self.fields[name]
        self.order_fields(self.ORDER)

    def clean(self):
        cleaned = super().clean()
        forged = [name for name in self.locked if name in self.data]
        if forged:
            status = self.instance.get_status_display().lower()
            labels = ", ".join(str(_label(self.instance, name)) for name in forged)
            raise ValidationError(
                _("Not while the campaign is %(status)s: %(fields)s."),
                code="campaign_not_editable",
                params={"status": status, "fields": labels},
            )
        return cleaned

    def _post_clean(self):
        if "control_percent" in self.cleaned_data:
            percent = self.cleaned_data["control_percent"]
            self.instance.control_basis_points = int(percent * 100)
        super()._post_clean()

    def values(self) -> dict:
        """Every field the form holds, as the model's fields (for a new campaign)."""
        return {_model_field(name): self._value(name) for name in self.fields if name in self.ORDER}

    def changes(self) -> dict:
        """The fields changed, as the model's fields (for `campaign_update`)."""
        return {_model_field(name): self._value(name) for name in self.changed_data}

    def _value(self, name: str):
        if name == "control_percent":
            return int(self.cleaned_data[name] * 100)
        return self.cleaned_data[name]


def _model_field(name: str) -> str:
    return "control_basis_points" if name == "control_percent" else name


def _label(instance, name: str):
    if name == "control_percent":
        return _("control group")
    return instance._meta.get_field(name).verbose_name


class CampaignFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=_("Status"), required=False, choices=[("", _("Any"))] + list(S.choices)
    )
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("Any"))] + list(Campaign.Kind.choices)
    )


class TransitionForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=255)


class MessageTemplateForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["channel", "language", "subject", "body", "html_body"]
        widgets = {
            "body": forms.Textarea(attrs={"rows": 6}),
            "html_body": forms.Textarea(attrs={"rows": 4}),
        }


class CampaignOfferForm(forms.ModelForm):
    class Meta:
        model = CampaignOffer
        fields = ["reward", "rule", "category", "days", "priority"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        reward = self.fields["reward"]
        reward.queryset = reward.queryset.filter(active=True).order_by("name_en")


class MessagePreviewForm(forms.Form):
    member = forms.CharField(
        label=_("Member"),
        max_length=120,
        help_text=_("Member id, card number, e-mail, phone or name."),
    )
    channel = forms.ChoiceField(label=_("Channel"), choices=Channel.choices)
    language = forms.ChoiceField(
        label=_("Language"),
        required=False,
        choices=[("", _("The member's own"))] + list(settings.LANGUAGES),
    )


class SimulationForm(forms.Form):
    """A past period to replay, refused as the command and the admin refuse it."""

    start = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        label=_("Until (inclusive)"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end"):
            refusal = period_refusal(
                first=cleaned["start"], last=cleaned["end"], today=timezone.localdate()
            )
            if refusal:
                raise ValidationError(refusal)
        return cleaned
