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
missing or malformed parameter, a tree deeper than `MAX_DEPTH` and a segment that refers to
itself through others.

The conditions live by what they read: `profile` (the member row: tier, attributes, consents,
enrolment, birthday, NPS), `history` (purchases, their lines and stores), `activity` (engagement
events, challenges, badges, other segments), `points` (balance, expiring lots) and `rfm` (the
RFM presets). `params` parses the parameters they share (windows of dates, min/max bounds),
`reads` answers the builder's questions (count, sample, reachable per channel).

Two exceptions to "one statement", each a small read before the one statement that selects the
members: a `{"condition": "segment", "id": n}` reference reads the referenced segments'
definitions (one query per level of nesting) while the tree is validated and compiled, and a
tree with an `rfm` condition reads which nightly RFM scores there are (one query, see `rfm`), so
that its statement holds only the branch it needs: the stored scores, or the ranking itself.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member

MAX_DEPTH = 8
GROUPS = ("all", "any", "not")


@dataclass(frozen=True)
class Context:
    """What every condition compiles against: the moment "now" for relative dates, and the
    definitions of the segments the tree refers to (read once, before compiling)."""

    now: datetime
    definitions: dict[int, dict] = field(default_factory=dict)
    # The segments being inlined, outermost first (see the "segment" condition).
    chain: tuple[int, ...] = ()
    # The nightly RFM scores the tree's rfm conditions read (rfm.fresh_scoring), None: they
    # rank the purchases in the statement. Read only for a tree that has an rfm condition.
    rfm_scoring: object | None = None


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


def invalid(message, **params) -> ValidationError:
    return ValidationError(message, code="invalid_segment", params=params)


def validate(definition, *, segment_id: int | None = None) -> None:
    """Raise ValidationError (code ``invalid_segment``) naming the first problem in the tree.

    `segment_id`: the saved segment this definition belongs to, so that a reference back to it
    (directly or through other segments) is refused as a cycle.
    """
    chain = (segment_id,) if segment_id is not None else ()
    _validate(definition, depth=0, chain=chain)


def _validate(definition, *, depth: int, chain: tuple[int, ...]) -> None:
    if depth > MAX_DEPTH:
        raise invalid(_("A segment may nest groups at most %(depth)s deep."), depth=MAX_DEPTH)
    if not isinstance(definition, dict):
        raise invalid(_("Each part of a segment must be a group or a condition."))
    groups = [key for key in GROUPS if key in definition]
    if groups:
        if len(definition) != 1:
            raise invalid(_("A group holds only its list of parts."))
        (key,) = groups
        value = definition[key]
        if key == "not":
            _validate(value, depth=depth + 1, chain=chain)
            return
        if not isinstance(value, list):
            raise invalid(_("A group of type “%(group)s” needs a list of parts."), group=key)
        for part in value:
            _validate(part, depth=depth + 1, chain=chain)
        return
    name = definition.get("condition")
    condition = CONDITIONS.get(name) if isinstance(name, str) else None
    if condition is None:
        raise invalid(_("Unknown segment condition “%(name)s”."), name=str(name)[:40])
    condition.check(definition)
    if name == "segment":
        _validate_reference(definition["id"], depth=depth, chain=chain)


def _validate_reference(segment_id: int, *, depth: int, chain: tuple[int, ...]) -> None:
    from campaigns.models import Segment

    if segment_id in chain:
        raise invalid(_("A segment cannot contain itself (through segment %(id)s)."), id=segment_id)
    definition = Segment.objects.filter(pk=segment_id).values_list("definition", flat=True).first()
    if definition is None:
        raise invalid(_("There is no segment %(id)s."), id=segment_id)
    _validate(definition, depth=depth + 1, chain=(*chain, segment_id))


def _conditions(*trees):
    """Every condition node of the trees, through their all/any/not groups (not into the
    segments a `segment` condition names)."""
    stack = list(trees)
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        if "all" in node or "any" in node:
            stack.extend(node.get("all", node.get("any")) or [])
        elif "not" in node:
            stack.append(node["not"])
        else:
            yield node


def references(definition) -> set[int]:
    """Ids of the segments the tree refers to directly (not those they refer to)."""
    return {node["id"] for node in _conditions(definition) if node.get("condition") == "segment"}


def _definitions(definition) -> dict[int, dict]:
    """Every segment the tree refers to, transitively, by id: one query per nesting level."""
    from campaigns.models import Segment

    loaded: dict[int, dict] = {}
    wanted = references(definition)
    for _level in range(MAX_DEPTH + 1):
        wanted -= loaded.keys()
        if not wanted:
            break
        rows = dict(Segment.objects.filter(pk__in=wanted).values_list("pk", "definition"))
        loaded.update(rows)
        wanted = set().union(*(references(d) for d in rows.values())) if rows else set()
    return loaded


def uses(condition: str, definition, definitions: dict[int, dict]) -> bool:
    """Whether the tree, or a segment it refers to (in `definitions`), has the condition."""
    return any(
        node.get("condition") == condition
        for node in _conditions(definition, *definitions.values())
    )


def context_for(definition, *, now: datetime | None = None) -> Context:
    """What the tree compiles against: its referenced definitions, and the RFM scores to read
    when it has an rfm condition."""
    now = now or timezone.now()
    definitions = _definitions(definition)
    scoring = rfm.fresh_scoring(now) if uses("rfm", definition, definitions) else None
    return Context(now=now, definitions=definitions, rfm_scoring=scoring)


def compile_q(definition, *, now: datetime | None = None, context: Context | None = None) -> Q:
    """The tree as one Q over members; the definition must be valid (see `validate`).

    `context`: one made by `context_for` for a tree holding this one (segments_holding makes one
    for all the segments it asks about); made here otherwise.
    """
    return _compile(definition, context or context_for(definition, now=now))


def compile_node(node: dict, context: Context) -> Q:
    """One part of a tree (a referenced segment's definition, say) against the same context."""
    return _compile(node, context)


def _compile(node: dict, context: Context) -> Q:
    if "all" in node:
        # Not an empty Q(): Django drops it, so {"not": {"all": []}} would select everyone.
        q = Q(pk__isnull=False)
        for part in _without_implied(node["all"]):
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


def _days(window) -> int | None:
    return window["days"] if isinstance(window, dict) and "days" in window else None


# Conditions that hold only for a member with a counted purchase in their window.
_BUYING = ("bought", "store_visited")


def _without_implied(parts: list) -> list:
    """An "all" group's parts less the recency conditions that another of its parts implies.

    "Last purchase in the last N days" holds for whoever bought a category, an SKU or in a store
    in the last M <= N days (that is a counted purchase in its window), so its own test, a probe
    of each member's purchases or a hash of every purchase of the window, is left out: the
    typical segment "Silver and above, bought coffee in the last 90 days, last purchase in the
    last 90 days" reads the window's purchases once, not twice. Only relative windows: an
    absolute window's recency also asks that no purchase came after it.
    """
    windows = [p.get("window") for p in parts if p.get("condition") in _BUYING]
    relative = [days for days in map(_days, windows) if days is not None]
    if not relative:
        return parts
    shortest = min(relative)
    return [
        part
        for part in parts
        if part.get("condition") != "last_purchase" or (_days(part["window"]) or 0) < shortest
    ]


def members(definition, *, now: datetime | None = None) -> QuerySet:
    """Active members the definition selects, as one query (never blocked or erased ones)."""
    validate(definition)
    return Member.objects.filter(status=Member.Status.ACTIVE).filter(compile_q(definition, now=now))


# The conditions register themselves on import, grouped by what they read.
from campaigns.segments import activity, history, points, profile, rfm  # noqa: E402, F401
from campaigns.segments.reads import (  # noqa: E402
    RfmBasis,
    segment_count,
    segment_reachable,
    segment_rfm_basis,
    segment_sample,
    segments_holding,
)

__all__ = [
    "CONDITIONS",
    "MAX_DEPTH",
    "RfmBasis",
    "Condition",
    "Context",
    "compile_node",
    "compile_q",
    "context_for",
    "invalid",
    "members",
    "references",
    "register",
    "segment_count",
    "segment_reachable",
    "segment_rfm_basis",
    "segment_sample",
    "segments_holding",
    "uses",
    "validate",
]
