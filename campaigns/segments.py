"""A segment's definition, validated and compiled to one query over members.

A definition is a tree of groups and conditions::

    {"all": [                                   # AND; an empty "all" is every member
        {"condition": "tier", "in": ["Gold"]},
        {"any": [...]},                         # OR; an empty "any" is nobody
        {"not": {"condition": "consent", "purpose": "sms"}},
    ]}

Each condition compiles to a `Q` over `members.Member` (subqueries with `Exists`/`OuterRef` for
what lives in other tables), so the whole tree is one SQL statement: counting, sampling and
freezing a segment of a million members costs one query, not a Python loop. A condition is a
`Condition` registered in `CONDITIONS` by its name; `validate` refuses an unknown name, a
missing or malformed parameter, and a tree deeper than `MAX_DEPTH`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members import selectors as member_selectors
from members.models import Consent, Member

MAX_DEPTH = 8
GROUPS = ("all", "any", "not")


@dataclass(frozen=True)
class Context:
    """What every condition compiles against: the moment "now" for relative dates."""

    now: datetime


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    # Raises ValidationError when the node's parameters are wrong.
    check: Callable[[dict], None]
    # The node's Q over members.
    compile: Callable[[dict, Context], Q]


CONDITIONS: dict[str, Condition] = {}


def register(condition: Condition) -> Condition:
    CONDITIONS[condition.name] = condition
    return condition


def _invalid(message, **params) -> ValidationError:
    return ValidationError(message, code="invalid_segment", params=params)


def validate(definition, *, depth: int = 0) -> None:
    """Raise ValidationError (code ``invalid_segment``) naming the first problem in the tree."""
    if depth > MAX_DEPTH:
        raise _invalid(_("A segment may nest groups at most %(depth)s deep."), depth=MAX_DEPTH)
    if not isinstance(definition, dict):
        raise _invalid(_("Each part of a segment must be a group or a condition."))
    groups = [key for key in GROUPS if key in definition]
    if groups:
        if len(definition) != 1:
            raise _invalid(_("A group holds only its list of parts."))
        (key,) = groups
        value = definition[key]
        if key == "not":
            validate(value, depth=depth + 1)
            return
        if not isinstance(value, list):
            raise _invalid(_("A group of type “%(group)s” needs a list of parts."), group=key)
        for part in value:
            validate(part, depth=depth + 1)
        return
    name = definition.get("condition")
    condition = CONDITIONS.get(name) if isinstance(name, str) else None
    if condition is None:
        raise _invalid(_("Unknown segment condition “%(name)s”."), name=str(name)[:40])
    condition.check(definition)


def compile_q(definition, *, now: datetime | None = None) -> Q:
    """The tree as one Q over members; the definition must be valid (see `validate`)."""
    return _compile(definition, Context(now=now or timezone.now()))


def _compile(node: dict, context: Context) -> Q:
    if "all" in node:
        q = Q()
        for part in node["all"]:
            q &= _compile(part, context)
        return q
    if "any" in node:
        if not node["any"]:
            return Q(pk__in=[])
        q = Q()
        for part in node["any"]:
            q |= _compile(part, context)
        return q
    if "not" in node:
        return ~_compile(node["not"], context)
    return CONDITIONS[node["condition"]].compile(node, context)


def members(definition, *, now: datetime | None = None) -> QuerySet:
    """Active members the definition selects, as one query (never blocked or erased ones)."""
    validate(definition)
    return Member.objects.filter(status=Member.Status.ACTIVE).filter(compile_q(definition, now=now))


# -- conditions --------------------------------------------------------------------------------


def _names(node: dict, key: str) -> list[str]:
    value = node.get(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and item.strip() for item in value)
    ):
        raise _invalid(
            _("Condition “%(name)s” needs “%(key)s”: a list of names."),
            name=node["condition"],
            key=key,
        )
    return value


def _check_tier(node: dict) -> None:
    _names(node, "in")


register(
    Condition(
        name="tier",
        label=_("Tier"),
        check=_check_tier,
        compile=lambda node, context: Q(tier__name__in=node["in"]),
    )
)


def _check_consent(node: dict) -> None:
    if node.get("purpose") not in Consent.Purpose.values:
        raise _invalid(
            _("Condition “consent” needs a purpose: one of %(purposes)s."),
            purposes=", ".join(Consent.Purpose.values),
        )


register(
    Condition(
        name="consent",
        label=_("Consent given"),
        check=_check_consent,
        compile=lambda node, context: Q(
            pk__in=member_selectors.members_consenting(purpose=node["purpose"]).values("pk")
        ),
    )
)
