"""The segment builder's form fields per condition: what to ask for, and how the answers map
to the condition's JSON parameters and back.

`CONDITIONS` says what a condition selects and `validate` whether its parameters are right; it
does not say which inputs a form should show. `FIELDS` does, one `Spec` per condition name:
its inputs (`Param`) and two small functions, `to_node` (the form's answers → the condition's
JSON node) and `from_node` (a stored node → the form's initial answers).

`to_node` converts, it does not judge: a whole number typed as "ten" is passed on as the text
"ten", and `validate` refuses it with its usual message. So there is one place that decides what
a valid segment is, and the builder shows exactly the message the admin and the API would.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from django.utils.translation import gettext_lazy as _

from campaigns.segments import CONDITIONS

# Input widgets the builder's template knows how to draw.
TEXT, NAMES, MULTI, SELECT, INT, NUMBER, DATE = (
    "text",
    "names",
    "multi",
    "select",
    "int",
    "number",
    "date",
)


@dataclass(frozen=True)
class Param:
    """One input of a condition's row. `choices` (for MULTI and SELECT) is called when the row
    is drawn: choices from the database (tiers, badges, segments) are read then."""

    name: str
    label: str
    widget: str
    choices: Callable[[], list[tuple[str, str]]] | None = None
    help: str = ""


@dataclass(frozen=True)
class Spec:
    params: tuple[Param, ...]
    to_node: Callable[[dict], dict]
    from_node: Callable[[dict], dict]


# -- converting answers --------------------------------------------------------------------------

_SPLIT = re.compile(r"[,\n]")


def split_names(text) -> list[str]:
    """ "a, b\\nc" → ["a", "b", "c"] (blank items dropped, order kept, duplicates once)."""
    if isinstance(text, list):
        items = [str(item).strip() for item in text]
    else:
        items = [item.strip() for item in _SPLIT.split(text or "")]
    return list(dict.fromkeys(item for item in items if item))


def whole_number(text):
    """ "12" → 12; anything else is passed on as typed, for `validate` to refuse."""
    text = (text or "").strip()
    if re.fullmatch(r"-?\d{1,12}", text):
        return int(text)
    return text


def number(text):
    """ "12" → 12, "12.50" → 12.5; anything else as typed, for `validate` to refuse."""
    text = (text or "").strip().replace(",", ".")
    value = whole_number(text)
    if isinstance(value, int):
        return value
    try:
        parsed = Decimal(text)
    except InvalidOperation:
        return text
    return float(parsed) if parsed.is_finite() else text


def json_scalar(text):
    """A profile value as JSON when it reads as a JSON scalar (2, true, "2"), else the text."""
    text = (text or "").strip()
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, str | int | float | bool) else text


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | int | float) or not isinstance(value, str):
        return json.dumps(value)
    return value


def _shown_scalar(value) -> str:
    """A profile value for its input: texts that would read as JSON keep their quotes."""
    if isinstance(value, str) and json_scalar(value) == value:
        return value
    return json.dumps(value)


def _put(node: dict, key: str, value) -> None:
    if value not in ("", None, []):
        node[key] = value


# -- shared groups of inputs ---------------------------------------------------------------------

WINDOW_ANY, WINDOW_DAYS, WINDOW_DATES = "", "days", "dates"


def _window_modes(required: bool) -> Callable[[], list[tuple[str, str]]]:
    def modes():
        choices = [
            (WINDOW_DAYS, str(_("in the last … days"))),
            (WINDOW_DATES, str(_("between dates"))),
        ]
        return choices if required else [(WINDOW_ANY, str(_("at any time"))), *choices]

    return modes


def window_params(required: bool = False) -> tuple[Param, ...]:
    return (
        Param("window", _("When"), SELECT, choices=_window_modes(required)),
        Param("window_days", _("Days"), INT, help=_("Today counts as the first day.")),
        Param("window_from", _("From"), DATE),
        Param("window_until", _("Until (inclusive)"), DATE),
    )


def window_to_node(values: dict, node: dict, *, required: bool = False) -> None:
    mode = values.get("window") or (WINDOW_DAYS if required else WINDOW_ANY)
    if mode == WINDOW_DAYS:
        node["window"] = {"days": whole_number(values.get("window_days"))}
    elif mode == WINDOW_DATES:
        window = {}
        _put(window, "from", (values.get("window_from") or "").strip())
        _put(window, "until", (values.get("window_until") or "").strip())
        node["window"] = window


def window_from_node(node: dict) -> dict:
    window = node.get("window")
    if not isinstance(window, dict):
        return {"window": WINDOW_ANY}
    if "days" in window:
        return {"window": WINDOW_DAYS, "window_days": _shown(window["days"])}
    return {
        "window": WINDOW_DATES,
        "window_from": _shown(window.get("from")),
        "window_until": _shown(window.get("until")),
    }


def bounds_params(label_min=None, label_max=None) -> tuple[Param, ...]:
    return (
        Param("min", label_min or _("At least"), NUMBER),
        Param("max", label_max or _("At most"), NUMBER),
    )


def bounds_to_node(values: dict, node: dict, *, money: bool = False) -> None:
    convert = number if money else whole_number
    for key in ("min", "max"):
        _put(node, key, convert(values.get(key)))


def bounds_from_node(node: dict) -> dict:
    return {key: _shown(node.get(key)) for key in ("min", "max")}


# -- choices read when a row is drawn ------------------------------------------------------------


def tier_choices() -> list[tuple[str, str]]:
    from members.models import Tier

    return [(name, name) for name in Tier.objects.order_by("rank").values_list("name", flat=True)]


def consent_choices() -> list[tuple[str, str]]:
    from members.models import Consent

    return [(value, str(label)) for value, label in Consent.Purpose.choices]


def engagement_kind_choices() -> list[tuple[str, str]]:
    from campaigns.models import EngagementKind

    return [
        (code, f"{name} ({code})")
        for code, name in EngagementKind.objects.order_by("code").values_list("code", "name")
    ]


def challenge_choices() -> list[tuple[str, str]]:
    from campaigns.models import Challenge

    return [
        (str(pk), name) for pk, name in Challenge.objects.order_by("name").values_list("pk", "name")
    ]


def badge_choices() -> list[tuple[str, str]]:
    from campaigns.models import Badge

    return [
        (code, f"{name} ({code})")
        for code, name in Badge.objects.order_by("code").values_list("code", "name")
    ]


def segment_choices() -> list[tuple[str, str]]:
    from campaigns.models import Segment

    return [("", "—")] + [
        (str(pk), name) for pk, name in Segment.objects.order_by("name").values_list("pk", "name")
    ]


def rfm_choices() -> list[tuple[str, str]]:
    from campaigns.segments.rfm import PRESET_LABELS

    return [(key, str(label)) for key, label in PRESET_LABELS.items()]


# -- the specs -----------------------------------------------------------------------------------


def _names_spec(key: str, label, *, widget: str = NAMES, choices=None, window=False) -> Spec:
    params = (Param(key, label, widget, choices=choices),)
    if window:
        params += window_params()

    def to_node(values: dict) -> dict:
        node = {}
        _put(node, key, split_names(values.get(key)))
        if window:
            window_to_node(values, node)
        return node

    def from_node(node: dict) -> dict:
        raw = node.get(key)
        shown = [str(item) for item in raw] if isinstance(raw, list) else []
        values = {key: shown if widget == MULTI else ", ".join(shown)}
        if window:
            values.update(window_from_node(node))
        return values

    return Spec(params, to_node, from_node)


def _window_spec(required: bool) -> Spec:
    def to_node(values: dict) -> dict:
        node = {}
        window_to_node(values, node, required=required)
        return node

    return Spec(window_params(required), to_node, window_from_node)


def _bounds_spec(*, money=False, window=False, label_min=None, label_max=None) -> Spec:
    params = bounds_params(label_min, label_max) + (window_params() if window else ())

    def to_node(values: dict) -> dict:
        node = {}
        bounds_to_node(values, node, money=money)
        if window:
            window_to_node(values, node)
        return node

    def from_node(node: dict) -> dict:
        values = bounds_from_node(node)
        if window:
            values.update(window_from_node(node))
        return values

    return Spec(params, to_node, from_node)


def _choice_spec(key: str, label, choices, *, convert=str) -> Spec:
    def to_node(values: dict) -> dict:
        value = (values.get(key) or "").strip()
        return {key: convert(value)} if value else {}

    def from_node(node: dict) -> dict:
        return {key: _shown(node.get(key))}

    return Spec((Param(key, label, SELECT, choices=choices),), to_node, from_node)


# profile: one attribute and one test of it.
PROFILE_TESTS = {
    "equals": _("is"),
    "in": _("is one of"),
    "contains": _("contains"),
    "exists": _("is set"),
    "missing": _("is not set"),
}


def _profile_to_node(values: dict) -> dict:
    node = {"key": (values.get("key") or "").strip()}
    test = values.get("test") or "equals"
    text = values.get("value") or ""
    if test == "exists":
        node["exists"] = True
    elif test == "missing":
        node["exists"] = False
    elif test == "in":
        node["in"] = [json_scalar(item) for item in split_names(text)]
    elif test == "contains":
        value = json_scalar(text)
        node["contains"] = text.strip() if isinstance(value, bool) else value
    else:
        node["equals"] = json_scalar(text)
    return node


def _profile_from_node(node: dict) -> dict:
    values = {"key": _shown(node.get("key")), "test": "equals", "value": ""}
    if "exists" in node:
        values["test"] = "exists" if node["exists"] is True else "missing"
    elif "in" in node and isinstance(node["in"], list):
        values["test"] = "in"
        values["value"] = ", ".join(_shown_scalar(item) for item in node["in"])
    elif "contains" in node:
        values["test"] = "contains"
        values["value"] = _shown_scalar(node["contains"])
    elif "equals" in node:
        values["value"] = _shown_scalar(node["equals"])
    return values


def _bought_to_node(values: dict) -> dict:
    node = {}
    _put(node, "skus", split_names(values.get("skus")))
    _put(node, "categories", split_names(values.get("categories")))
    window_to_node(values, node)
    return node


def _bought_from_node(node: dict) -> dict:
    values = window_from_node(node)
    for key in ("skus", "categories"):
        raw = node.get(key)
        values[key] = ", ".join(str(v) for v in raw) if isinstance(raw, list) else ""
    return values


def _engagement_to_node(values: dict) -> dict:
    node = {}
    _put(node, "in", split_names(values.get("in")))
    bounds_to_node(values, node)
    window_to_node(values, node)
    return node


def _engagement_from_node(node: dict) -> dict:
    raw = node.get("in")
    return {
        "in": [str(v) for v in raw] if isinstance(raw, list) else [],
        **bounds_from_node(node),
        **window_from_node(node),
    }


def _challenge_to_node(values: dict) -> dict:
    node = {}
    _put(node, "in", [whole_number(v) for v in split_names(values.get("in"))])
    window_to_node(values, node)
    return node


def _expiring_to_node(values: dict) -> dict:
    node = {"days": whole_number(values.get("days"))}
    bounds_to_node(values, node)
    return node


def _expiring_from_node(node: dict) -> dict:
    return {"days": _shown(node.get("days")), **bounds_from_node(node)}


def _days_spec(label, help_text="") -> Spec:
    return Spec(
        (Param("days", label, INT, help=help_text),),
        lambda values: {"days": whole_number(values.get("days"))},
        lambda node: {"days": _shown(node.get("days"))},
    )


def _segment_id(value: str):
    return whole_number(value)


FIELDS: dict[str, Spec] = {
    "tier": _names_spec("in", _("Tiers"), widget=MULTI, choices=tier_choices),
    "profile": Spec(
        (
            Param("key", _("Attribute"), TEXT, help=_("The profile attribute's name, e.g. city.")),
            Param(
                "test",
                _("Test"),
                SELECT,
                choices=lambda: [(k, str(v)) for k, v in PROFILE_TESTS.items()],
            ),
            Param(
                "value",
                _("Value"),
                TEXT,
                help=_('2 is a number, "2" a text; for “is one of”, separate values by commas.'),
            ),
        ),
        _profile_to_node,
        _profile_from_node,
    ),
    "consent": _choice_spec("purpose", _("Purpose"), consent_choices),
    "enrolled": _window_spec(required=True),
    "enrolment_channel": _names_spec("in", _("Channels")),
    "last_purchase": _window_spec(required=True),
    "frequency": _bounds_spec(window=True, label_min=_("At least (purchases)")),
    "monetary": _bounds_spec(money=True, window=True, label_min=_("At least (amount)")),
    "bought": Spec(
        (
            Param("skus", _("SKUs"), NAMES),
            Param("categories", _("Categories"), NAMES),
            *window_params(),
        ),
        _bought_to_node,
        _bought_from_node,
    ),
    "store_visited": _names_spec("in", _("Stores"), window=True),
    "engagement": Spec(
        (
            Param("in", _("Kinds"), MULTI, choices=engagement_kind_choices),
            *bounds_params(_("At least (default 1)")),
            *window_params(),
        ),
        _engagement_to_node,
        _engagement_from_node,
    ),
    "challenge_completed": Spec(
        (
            Param(
                "in",
                _("Challenges"),
                MULTI,
                choices=challenge_choices,
                help=_("None ticked: any challenge."),
            ),
            *window_params(),
        ),
        _challenge_to_node,
        lambda node: {
            "in": [str(v) for v in node.get("in", [])] if isinstance(node.get("in"), list) else [],
            **window_from_node(node),
        },
    ),
    "badge": _names_spec("in", _("Badges"), widget=MULTI, choices=badge_choices),
    "balance": _bounds_spec(),
    "points_expiring": Spec(
        (
            Param("days", _("Within days"), INT, help=_("0: today.")),
            *bounds_params(_("At least (default 1)")),
        ),
        _expiring_to_node,
        _expiring_from_node,
    ),
    "birthday": _days_spec(_("Within days"), _("0: today; up to 366.")),
    "nps": _bounds_spec(window=True, label_min=_("At least (0–10)"), label_max=_("At most")),
    "segment": _choice_spec("id", _("Segment"), segment_choices, convert=_segment_id),
    "rfm": _choice_spec("segment", _("Preset"), rfm_choices),
}


def condition_to_node(name: str, values: dict) -> dict:
    """The condition's JSON node from the form's answers (unknown names as they are: `validate`
    refuses them)."""
    spec = FIELDS.get(name)
    node = {"condition": name}
    if spec is not None:
        node.update(spec.to_node(values))
    return node


def condition_from_node(node: dict) -> dict:
    spec = FIELDS.get(node.get("condition"))
    return spec.from_node(node) if spec is not None else {}


def condition_choices() -> list[tuple[str, str]]:
    """Every condition for the kind picker, by translated label."""
    return sorted(
        ((name, str(condition.label)) for name, condition in CONDITIONS.items()),
        key=lambda choice: choice[1].lower(),
    )
