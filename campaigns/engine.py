"""The earning-rule engine: which rules apply to a purchase and how many points each gives.

Pure on purpose: no database, no settings, no clock, only a logger. Real purchases
(`services.purchase_record`) and the simulator feed it the same plain facts, so what the
simulator predicts is what the till would have earned. Everything a rule needs from the outside
world (what the member already earned from it this period, what is left of its budget, the
member's tier) arrives in the inputs.

Semantics, in the order they are applied:
1. A rule applies when every condition it sets holds (an empty condition holds always). A rule
   limited to segments applies to a member in at least one of them (`MemberFacts.segments`).
2. Rate rules give `rate` points per currency unit of the eligible amount (all lines matching the
   rule's sku/category filter, or the whole purchase when it has no such filter).
3. Multiplier rules give `(multiplier - 1)` times what the applied rate rules gave on their eligible
   amount; bonus rules give a fixed number of points.
4. Stacking rules all apply. Of the matching rules that do not stack, only the one with the
   highest priority applies (ties: lowest id).
5. Each rule's points are capped per purchase, then by what is left of its per-member period cap,
   then by what is left of its total budget.
6. A campaign's rule (`RuleSpec.campaign`) applies only to members of the campaign's audience
   (`MemberFacts.campaigns`) outside its control group (`RuleSpec.control`, decided here from the
   member id, no query); its points are then capped by what is left of the campaign's budget
   (`evaluate(campaign_budget=)`) and of the member's campaign cap (`MemberFacts.campaign_left`),
   both shared by all the campaign's rules, in rule order: the budget's last points go in part.
7. The member's tier multiplier, if above 1, adds a last line on top of the rules' total.

A rule's data never fails a purchase: a spec with a malformed field (`spec_problem`), or one that
raises against a particular purchase (a naive start compared with an aware time), is skipped
with a warning naming the rule, and the other rules still apply.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import NamedTuple

from campaigns.control import bucket

RATE = "rate"
MULTIPLIER = "multiplier"
BONUS = "bonus"
KIND_ORDER = {RATE: 0, MULTIPLIER: 1, BONUS: 2}

ROUND_DOWN = "down"
ROUND_HALF = "half_up"
ROUND_UP = "up"
_ROUNDING = {ROUND_DOWN: ROUND_FLOOR, ROUND_HALF: ROUND_HALF_UP, ROUND_UP: ROUND_CEILING}


_ONE = Decimal(1)

logger = logging.getLogger(__name__)


def round_points(value: Decimal, mode: str) -> int:
    return int(value.quantize(Decimal(1), rounding=_ROUNDING[mode]))


class LineFacts(NamedTuple):
    sku: str
    category: str
    quantity: int
    amount: Decimal


class PurchaseFacts(NamedTuple):
    amount: Decimal
    occurred_at: datetime  # in the programme's local time: weekdays and time windows use it
    channel: str = ""
    store: str = ""
    currency: str = ""
    lines: tuple[LineFacts, ...] = ()


class MemberFacts(NamedTuple):
    member_id: int | None = None
    tier: str = ""
    tier_multiplier: Decimal = Decimal(1)
    first_purchase: bool = False
    birth_date: date | None = None
    enrolled_on: date | None = None
    # Points each rule (by id) already gave this member in the rule's current cap period.
    earned_in_period: Mapping[int, int] = MappingProxyType({})
    # Which of the segments that the rules name hold this member (ids); the caller asks the
    # database, only for segments some rule uses.
    segments: frozenset[int] = frozenset()
    # Campaigns (by id) whose frozen audience holds the member, control group or not.
    campaigns: frozenset[int] = frozenset()
    # Points each capped campaign (by id) may still give the member in its current cap period.
    campaign_left: Mapping[int, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RuleSpec:
    id: int
    name: str
    kind: str = RATE
    rate: Decimal = Decimal(0)
    multiplier: Decimal = Decimal(1)
    bonus_points: int = 0
    rounding: str = ROUND_DOWN
    skus: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    stores: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    tiers: frozenset[str] = frozenset()
    segments: frozenset[int] = frozenset()  # the member must be in one of them (ids)
    days_of_week: frozenset[int] = frozenset()  # 0 = Monday
    time_from: time | None = None
    time_until: time | None = None  # exclusive; a window with from > until spans midnight
    starts_at: datetime | None = None
    ends_at: datetime | None = None  # exclusive
    min_spend: Decimal | None = None
    first_purchase_only: bool = False
    birthday: bool = False  # on the member's birthday (same day and month)
    anniversary: bool = False  # on the anniversary of the member's enrolment
    cap_per_purchase: int | None = None
    cap_per_member: int | None = None  # per member per cap period, see MemberFacts
    budget_remaining: int | None = None
    priority: int = 0
    stacks: bool = True
    campaign: int | None = None  # the campaign whose treated audience alone the rule reaches
    control: tuple[int, int] | None = None  # the campaign's (salt, control share in buckets)
    # Why the stored rule cannot be applied (its builder logged it); such a rule never matches.
    unusable: str = ""

    @property
    def filters_lines(self) -> bool:
        return bool(self.skus or self.categories)


class Award(NamedTuple):
    rule_id: int | None
    rule: str
    points: int
    reason: str

    def as_explanation(self) -> dict:
        return {"rule": self.rule, "rule_id": self.rule_id, "points": self.points}


class Evaluation(NamedTuple):
    awards: tuple[Award, ...]

    @property
    def points(self) -> int:
        return sum(award.points for award in self.awards)

    def explanation(self) -> list[dict]:
        return [award.as_explanation() for award in self.awards]


def _same_day(day: date, on: date) -> bool:
    if (day.month, day.day) == (on.month, on.day):
        return True
    # Someone born on 29 February celebrates on 28 February in other years.
    return (day.month, day.day) == (2, 29) and (on.month, on.day) == (2, 28) and not _leap(on.year)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _in_window(at: time, start: time | None, until: time | None) -> bool:
    if start is None and until is None:
        return True
    if start is None:
        return at < until
    if until is None:
        return at >= start
    if start <= until:
        return start <= at < until
    return at >= start or at < until


def eligible_amount(rule: RuleSpec, purchase: PurchaseFacts) -> Decimal | None:
    """The amount the rule counts, or None when its line filter matches nothing."""
    if not rule.filters_lines:
        return purchase.amount
    total = Decimal(0)
    matched = False
    for line in purchase.lines:
        if (not rule.skus or line.sku in rule.skus) and (
            not rule.categories or line.category in rule.categories
        ):
            matched = True
            total += line.amount
    return total if matched else None


_SETS = ("skus", "categories", "stores", "channels", "tiers")
_INTS_OR_NONE = ("cap_per_purchase", "cap_per_member", "budget_remaining")
_FLAGS = ("first_purchase_only", "birthday", "anniversary", "stacks")


def _is_int(value) -> bool:
    return type(value) is int  # not bool


def _is_decimal(value) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def spec_problem(rule: RuleSpec) -> str:
    """Why the engine cannot apply this spec ("" when it can): a field of the wrong type."""
    if rule.unusable:
        return str(rule.unusable)
    if not _is_int(rule.id) or not _is_int(rule.priority) or not isinstance(rule.name, str):
        return "id, name or priority"
    if not isinstance(rule.kind, str) or rule.kind not in KIND_ORDER:
        return "kind"
    if not isinstance(rule.rounding, str) or rule.rounding not in _ROUNDING:
        return "rounding"
    if not _is_decimal(rule.rate) or not _is_decimal(rule.multiplier):
        return "rate or multiplier"
    if not _is_int(rule.bonus_points):
        return "bonus_points"
    for name in _SETS:
        value = getattr(rule, name)
        if not isinstance(value, frozenset) or not all(isinstance(v, str) for v in value):
            return name
    if not isinstance(rule.segments, frozenset) or not all(_is_int(v) for v in rule.segments):
        return "segments"
    days = rule.days_of_week
    if not isinstance(days, frozenset) or not all(_is_int(v) and 0 <= v <= 6 for v in days):
        return "days_of_week"
    for name in ("time_from", "time_until"):
        value = getattr(rule, name)
        # Compared with the purchase's wall-clock time, which is naive.
        if value is not None and (not isinstance(value, time) or value.tzinfo is not None):
            return name
    for name in ("starts_at", "ends_at"):
        if getattr(rule, name) is not None and not isinstance(getattr(rule, name), datetime):
            return name
    if rule.min_spend is not None and not _is_decimal(rule.min_spend):
        return "min_spend"
    for name in _INTS_OR_NONE:
        if getattr(rule, name) is not None and not _is_int(getattr(rule, name)):
            return name
    for name in _FLAGS:
        if not isinstance(getattr(rule, name), bool):
            return name
    if rule.campaign is not None and not _is_int(rule.campaign):
        return "campaign"
    if rule.control is not None and not (
        isinstance(rule.control, tuple)
        and len(rule.control) == 2
        and all(_is_int(v) for v in rule.control)
    ):
        return "control"
    return ""


def _skip(rule: RuleSpec, problem: str) -> None:
    logger.warning("Earning rule %s (%r) skipped: %s", rule.id, rule.name, problem)


Check = Callable[[PurchaseFacts, "MemberFacts"], bool]


def _checks(rule: RuleSpec) -> tuple[Check, ...]:
    """The rule's conditions as small predicates, only those it sets (evaluated per purchase)."""
    checks: list[Check] = []
    if rule.campaign is not None:
        campaign = rule.campaign
        salt, share = rule.control or (1, 0)
        checks.append(
            lambda p, m: (
                campaign in m.campaigns
                and not (share and m.member_id is not None and bucket(m.member_id, salt) < share)
            )
        )
    if rule.starts_at is not None:
        starts = rule.starts_at
        checks.append(lambda p, m: p.occurred_at >= starts)
    if rule.ends_at is not None:
        ends = rule.ends_at
        checks.append(lambda p, m: p.occurred_at < ends)
    if rule.channels:
        channels = rule.channels
        checks.append(lambda p, m: p.channel in channels)
    if rule.stores:
        stores = rule.stores
        checks.append(lambda p, m: p.store in stores)
    if rule.tiers:
        tiers = rule.tiers
        checks.append(lambda p, m: m.tier in tiers)
    if rule.segments:
        segments = rule.segments
        checks.append(lambda p, m: not segments.isdisjoint(m.segments))
    if rule.days_of_week:
        days = rule.days_of_week
        checks.append(lambda p, m: p.occurred_at.weekday() in days)
    if rule.time_from is not None or rule.time_until is not None:
        start, until = rule.time_from, rule.time_until
        checks.append(lambda p, m: _in_window(p.occurred_at.time(), start, until))
    if rule.min_spend is not None:
        minimum = rule.min_spend
        checks.append(lambda p, m: p.amount >= minimum)
    if rule.first_purchase_only:
        checks.append(lambda p, m: m.first_purchase)
    if rule.birthday:
        checks.append(
            lambda p, m: m.birth_date is not None and _same_day(m.birth_date, p.occurred_at.date())
        )
    if rule.anniversary:
        checks.append(
            lambda p, m: (
                m.enrolled_on is not None
                and m.enrolled_on.year < p.occurred_at.year
                and _same_day(m.enrolled_on, p.occurred_at.date())
            )
        )
    return tuple(checks)


def rule_matches(rule: RuleSpec, purchase: PurchaseFacts, member: MemberFacts) -> bool:
    return all(check(purchase, member) for check in _checks(rule))


class PreparedRules:
    """Rules compiled once for many evaluations (the simulator's hot loop).

    `budget` holds what is left of each budgeted rule; the caller lowers it as points are
    issued (the simulator does; the real path builds a fresh one per purchase from the rows).
    """

    __slots__ = ("entries", "budget")

    def __init__(self, rules: Sequence[RuleSpec]):
        usable = []
        for rule in rules:
            problem = spec_problem(rule)
            if not problem:
                usable.append(rule)
            elif not rule.unusable:  # an unusable rule was logged by whoever built it
                _skip(rule, problem)
        rules = usable
        ordered = sorted(rules, key=lambda r: (KIND_ORDER[r.kind], -r.priority, r.id))
        # Everything the hot loop reads, unpacked once: attribute reads dominate otherwise.
        self.entries = tuple(
            (
                rule,
                _checks(rule),
                rule.filters_lines,
                None if rule.stacks else (-rule.priority, rule.id),
                rule.kind,
                _ROUNDING[rule.rounding],
                rule.cap_per_purchase is not None or rule.cap_per_member is not None,
                rule.skus,
                rule.categories,
            )
            for rule in ordered
        )
        self.budget = {r.id: r.budget_remaining for r in rules if r.budget_remaining is not None}


def _cap(rule: RuleSpec, points: int, member: MemberFacts, budget: dict) -> tuple[int, str]:
    note = ""
    if rule.cap_per_purchase is not None and points > rule.cap_per_purchase:
        points, note = rule.cap_per_purchase, "capped per purchase"
    if rule.cap_per_member is not None:
        left = max(rule.cap_per_member - member.earned_in_period.get(rule.id, 0), 0)
        if points > left:
            points, note = left, "capped per member"
    if rule.id in budget:
        left = max(budget[rule.id], 0)
        if points > left:
            points, note = left, "budget exhausted"
    return points, note


def _campaign_cap(
    campaign: int,
    points: int,
    note: str,
    member: MemberFacts,
    campaign_budget: Mapping[int, int] | None,
    room: dict[int, int],
) -> tuple[int, str]:
    if campaign not in room:
        left = None
        if campaign_budget is not None and campaign in campaign_budget:
            left = max(campaign_budget[campaign], 0)
        if campaign in member.campaign_left:
            mine = max(member.campaign_left[campaign], 0)
            left = mine if left is None else min(left, mine)
        room[campaign] = left
    left = room[campaign]
    if left is None:
        return points, note
    if points > left:
        budget_left = (campaign_budget or {}).get(campaign)
        note = (
            "campaign budget exhausted"
            if budget_left is not None and budget_left <= left
            else "capped per member by the campaign"
        )
        points = left
    room[campaign] = left - points
    return points, note


def evaluate(
    *,
    purchase: PurchaseFacts,
    member: MemberFacts,
    rules: Sequence[RuleSpec] | PreparedRules,
    explain: bool = True,
    campaign_budget: Mapping[int, int] | None = None,
) -> Evaluation:
    """`campaign_budget`: what is left of each budgeted campaign's points (by campaign id)."""
    prepared = rules if isinstance(rules, PreparedRules) else PreparedRules(rules)
    matching = []
    winner = None
    for entry in prepared.entries:
        rule, checks, filters_lines, exclusive = entry[0], entry[1], entry[2], entry[3]
        try:
            if filters_lines:
                # eligible_amount, inlined: this runs for every filtering rule on every purchase.
                skus, categories = entry[7], entry[8]
                amount = Decimal(0)
                matched = False
                for line in purchase.lines:
                    if (not skus or line.sku in skus) and (
                        not categories or line.category in categories
                    ):
                        matched = True
                        amount += line.amount
                if not matched:
                    continue
            else:
                amount = purchase.amount
            failed = False
            for check in checks:
                if not check(purchase, member):
                    failed = True
                    break
        except (TypeError, ValueError, ArithmeticError) as exc:
            _skip(rule, repr(exc))
            continue
        if failed:
            continue
        matching.append((entry, amount))
        if exclusive is not None and (winner is None or exclusive < winner):
            winner = exclusive

    awards: list[Award] = []
    base_rate = Decimal(0)
    budget = prepared.budget
    # What the campaigns' budgets and member caps leave, lowered as this purchase's awards use it.
    campaign_room: dict[int, int] = {}
    for entry, amount in matching:  # already in kind, priority, id order
        rule, exclusive, kind, rounding, capped = entry[0], entry[3], entry[4], entry[5], entry[6]
        if exclusive is not None and exclusive != winner:
            continue
        try:
            if kind == RATE:
                raw = int((amount * rule.rate).quantize(_ONE, rounding=rounding))
            elif kind == MULTIPLIER:
                raw = int(
                    (amount * base_rate * (rule.multiplier - 1)).quantize(_ONE, rounding=rounding)
                )
            else:
                raw = rule.bonus_points
            note = ""
            if raw > 0 and (capped or rule.id in budget):
                raw, note = _cap(rule, raw, member, budget)
            if raw > 0 and rule.campaign is not None:
                raw, note = _campaign_cap(
                    rule.campaign, raw, note, member, campaign_budget, campaign_room
                )
        except (TypeError, ValueError, ArithmeticError) as exc:  # a rate too large to round
            _skip(rule, repr(exc))
            continue
        if kind == RATE:
            # Multipliers multiply the rate actually granted, whether or not its points were
            # capped, so a capped base rate does not silently cap the campaign on top of it.
            base_rate += rule.rate
        if raw <= 0:
            continue
        reason = ""
        if explain:
            if kind == RATE:
                reason = f"{rule.rate} per unit on {amount}"
            elif kind == MULTIPLIER:
                reason = f"x{rule.multiplier} on {amount}"
            else:
                reason = "bonus"
            if note:
                reason = f"{reason}; {note}"
        awards.append(Award(rule.id, rule.name, raw, reason))

    if awards and member.tier_multiplier > 1:
        total = sum(a.points for a in awards)
        extra = round_points(total * (member.tier_multiplier - 1), ROUND_DOWN)
        if extra > 0:
            awards.append(
                Award(None, f"Tier {member.tier}".strip(), extra, f"x{member.tier_multiplier}")
            )
    return Evaluation(tuple(awards))
