"""Reads shared by the purchase path, the simulator, the admin and the API."""

import calendar
import dataclasses
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns import conditions, engine, segments
from campaigns.models import (
    Badge,
    Campaign,
    CampaignMessage,
    Challenge,
    ChallengeProgress,
    EarningAward,
    EarningRule,
    EngagementEvent,
    EngagementKind,
    MemberBadge,
    Period,
    PurchaseReview,
)
from ledger import selectors as ledger_selectors
from members import config_cache
from members.models import Member

logger = logging.getLogger(__name__)


def period_start(period: str, at: datetime) -> datetime | None:
    """Start of the calendar period (in local time) that contains `at`; None for "ever"."""
    local = timezone.localtime(at)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Period.DAY:
        return midnight
    if period == Period.WEEK:
        return midnight - timedelta(days=midnight.weekday())
    if period == Period.MONTH:
        return midnight.replace(day=1)
    if period == Period.YEAR:
        return midnight.replace(month=1, day=1)
    return None


def rule_spec(rule: EarningRule, *, campaign_as_active: bool = False) -> engine.RuleSpec:
    """The engine's view of a stored rule; a rule whose stored data is malformed never matches.

    Validation keeps such data out (the model's validators and constraints), but a row written
    around it must cost its own points only, not every purchase: it is logged and skipped.

    A campaign's rule takes its status and period from the campaign (not copied onto the rule):
    it never matches while the campaign is not active, and only inside the campaign's period;
    `campaign_as_active` judges it as if the campaign were running whenever it is asked about,
    its status and period aside (the campaign simulator replays a draft over a past period).
    """
    campaign = rule.campaign if rule.campaign_id is not None else None
    if (
        campaign is not None
        and not campaign_as_active
        and campaign.status != Campaign.Status.ACTIVE
    ):
        return engine.RuleSpec(id=rule.pk, name=rule.name, unusable="campaign not active")
    try:
        lists = {
            "skus": conditions.names(rule.skus),
            "categories": conditions.names(rule.categories),
            "stores": conditions.names(rule.stores),
            "channels": conditions.names(rule.channels),
            "days_of_week": conditions.weekdays(rule.days_of_week),
        }
    except ValueError as exc:
        return _rule_unusable(rule, str(exc))
    budget = None
    if rule.budget_points is not None:
        budget = rule.budget_points - rule.budget_spent
    spec = engine.RuleSpec(
        id=rule.pk,
        name=rule.name,
        kind=rule.kind,
        rate=Decimal(rule.rate),
        multiplier=Decimal(rule.multiplier),
        bonus_points=rule.bonus_points,
        rounding=rule.rounding,
        tiers=frozenset(tier.name for tier in rule.tiers.all()),
        segments=frozenset(segment.pk for segment in rule.segments.all()),
        **lists,
        time_from=rule.time_from,
        time_until=rule.time_until,
        starts_at=rule.starts_at
        if campaign is None or campaign_as_active
        else _latest(rule.starts_at, campaign.starts_at),
        ends_at=rule.ends_at
        if campaign is None or campaign_as_active
        else _earliest(rule.ends_at, campaign.ends_at),
        min_spend=rule.min_spend,
        first_purchase_only=rule.first_purchase_only,
        birthday=rule.birthday,
        anniversary=rule.anniversary,
        cap_per_purchase=rule.cap_per_purchase,
        cap_per_member=rule.cap_per_member,
        budget_remaining=budget,
        priority=rule.priority,
        stacks=rule.stacks,
        campaign=rule.campaign_id,
        control=(campaign.salt, campaign.control_basis_points) if campaign else None,
    )
    problem = engine.spec_problem(spec)
    return _rule_unusable(rule, problem) if problem else spec


def _latest(*moments: datetime | None) -> datetime | None:
    return max((m for m in moments if m is not None), default=None)


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((m for m in moments if m is not None), default=None)


def _rule_unusable(rule: EarningRule, problem: str) -> engine.RuleSpec:
    logger.warning(
        "Earning rule %s (%r) skipped, its stored data is malformed: %s",
        rule.pk,
        rule.name,
        problem,
    )
    return engine.RuleSpec(id=rule.pk, name=rule.name, unusable=problem)


def rule_spec_shared(rule: EarningRule) -> engine.RuleSpec:
    """`rule_spec` of a rule from `rules_active_cached`, built once per kept instance.

    Those instances do not change (config_cache), so neither does their spec, but for the
    budget: a budgeted rule is copied and given the spent points read under lock, so its spec
    takes the remaining budget from the copy.
    """
    spec = rule.__dict__.get("_engine_spec")
    if spec is None:
        spec = rule_spec(rule)
        rule.__dict__["_engine_spec"] = spec
    if rule.budget_points is not None:
        spec = dataclasses.replace(spec, budget_remaining=rule.budget_points - rule.budget_spent)
    return spec


def rules_in_play():
    """Rules that may apply at some moment: active, and of no campaign or an active campaign."""
    return (
        EarningRule.objects.filter(active=True)
        .filter(Q(campaign__isnull=True) | Q(campaign__status=Campaign.Status.ACTIVE))
        .select_related("campaign")
        .prefetch_related("tiers", "segments")
    )


def rules_active_at(at: datetime):
    return rules_in_play().filter(
        Q(starts_at__isnull=True) | Q(starts_at__lte=at),
        Q(ends_at__isnull=True) | Q(ends_at__gt=at),
        Q(campaign__isnull=True) | Q(campaign__starts_at__lte=at),
        Q(campaign__isnull=True) | Q(campaign__ends_at__isnull=True) | Q(campaign__ends_at__gt=at),
    )


def _in_force(row, at: datetime) -> bool:
    return (row.starts_at is None or row.starts_at <= at) and (
        row.ends_at is None or row.ends_at > at
    )


def _rule_in_force(rule: EarningRule, at: datetime) -> bool:
    # A campaign's rule runs in its campaign's period too (an active campaign has a start).
    return _in_force(rule, at) and (rule.campaign_id is None or _in_force(rule.campaign, at))


def rules_active_cached(at: datetime) -> list[EarningRule]:
    """`rules_active_at`, from the per-process copy of the active rules (config_cache).

    Shared instances: a caller that changes one (a budget's spent points) copies it first. A
    campaign's start, pause or end reaches the kept copy within LOYALTY_CONFIG_CACHE_SECONDS,
    like any edit; its budget is read from the locked row on every purchase, never kept. The
    rules' segments come with them, definitions included: an edited segment reaches the earn
    path within the same time.
    """
    rules = config_cache.cached("earning-rules", lambda: list(rules_in_play()))
    return [rule for rule in rules if _rule_in_force(rule, at)]


def challenges_active_cached(at: datetime) -> list[Challenge]:
    """Active challenges in force at `at` with their badge, from the per-process copy."""
    challenges = config_cache.cached(
        "challenges",
        lambda: list(Challenge.objects.filter(active=True).select_related("badge")),
    )
    return [challenge for challenge in challenges if _in_force(challenge, at)]


def rule_segment_definitions(rules: list[EarningRule]) -> dict[int, dict]:
    """The definitions of the segments these rules are limited to, by id (prefetched)."""
    return {segment.pk: segment.definition for rule in rules for segment in rule.segments.all()}


def member_facts(
    *, member: Member, rules: list[EarningRule], at: datetime, first_purchase: bool
) -> engine.MemberFacts:
    """What the engine needs to know about the member for these rules.

    Segment membership is asked only for the segments the rules use, all in one query (none
    when no rule names a segment), as of the purchase: the purchase being recorded is
    already stored, so it counts towards its own segment (a member whose purchase takes them
    over a spending threshold is in the segment for that purchase).
    """
    tier = member.tier  # From the cached ladder when the caller locked the member (no query).
    definitions = rule_segment_definitions(rules)
    held = (
        segments.segments_holding(member_id=member.pk, definitions=definitions, now=at)
        if definitions
        else frozenset()
    )
    earned: dict[int, int] = {}
    for rule in rules:
        if rule.cap_per_member is None:
            continue
        awards = EarningAward.objects.filter(rule=rule, member=member)
        start = period_start(rule.cap_period, at)
        if start is not None:
            awards = awards.filter(occurred_at__gte=start)
        earned[rule.pk] = awards.aggregate(total=Sum("points"))["total"] or 0
    return engine.MemberFacts(
        member_id=member.pk,
        tier=tier.name if tier is not None else "",
        tier_multiplier=tier.earn_multiplier if tier is not None else Decimal(1),
        first_purchase=first_purchase,
        birth_date=member.birth_date,
        enrolled_on=timezone.localdate(member.enrolled_at) if member.enrolled_at else None,
        earned_in_period=earned,
        segments=held,
    )


def challenges_for(*, member: Member) -> list[dict]:
    """Active challenges with the member's progress, for the member page and the API."""
    progress = {p.challenge_id: p for p in ChallengeProgress.objects.filter(member=member)}
    rows = []
    for challenge in Challenge.objects.filter(active=True).select_related("badge"):
        mine = progress.get(challenge.pk)
        rows.append(
            {
                "challenge": challenge,
                "value": mine.value if mine else Decimal(0),
                "target": challenge.target,
                "completed_at": mine.completed_at if mine else None,
            }
        )
    return rows


def badges_for(*, member: Member):
    return MemberBadge.objects.filter(member=member).select_related("badge").order_by("awarded_at")


def messages_for(*, member: Member) -> QuerySet[CampaignMessage]:
    """The campaign messages planned for the member (sent, suppressed and why), newest first."""
    return (
        CampaignMessage.objects.filter(member=member)
        .select_related("campaign")
        .order_by("-planned_at", "-id")
    )


def _count(queryset, field: str) -> Coalesce:
    # A counting subquery per row, not a join: two joined counts would multiply each other.
    return Coalesce(
        Subquery(
            queryset.order_by().values(field).annotate(n=Count("pk")).values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def engagement_kinds_overview(*, now: datetime | None = None, days: int = 30):
    """Every engagement kind with ``events_recent``: its events of the last `days` days (any
    status) and ``events_pending``: those waiting for a moderator. One query."""
    since = (now or timezone.now()) - timedelta(days=days)
    events = EngagementEvent.objects.filter(kind_id=OuterRef("pk"))
    return EngagementKind.objects.annotate(
        events_recent=_count(events.filter(created_at__gte=since), "kind_id"),
        events_pending=_count(events.filter(status=EngagementEvent.Status.PENDING), "kind_id"),
    ).order_by("code")


def challenges_overview():
    """Every challenge with its badge and engagement kind, ``participants`` (members with
    progress) and ``completions``. One query."""
    progress = ChallengeProgress.objects.filter(challenge_id=OuterRef("pk"))
    return (
        Challenge.objects.select_related("badge", "event_kind")
        .annotate(
            participants=_count(progress, "challenge_id"),
            completions=_count(progress.filter(completed_at__isnull=False), "challenge_id"),
        )
        .order_by("-active", "name", "pk")
    )


def badges_overview():
    """Every badge with ``holder_count``, the members who hold it. One query."""
    return Badge.objects.annotate(
        holder_count=_count(MemberBadge.objects.filter(badge_id=OuterRef("pk")), "badge_id")
    ).order_by("name", "pk")


def birthday_reference(on: date) -> str:
    """The birthday event's reference: one a year per member (the unique reference)."""
    return f"birthday:{on.year}"


def birthday_members(*, on: date) -> QuerySet[Member]:
    """Active members whose birthday is ``on`` (29 February's on 28 February of other years)."""
    days = [(on.month, on.day)]
    if (on.month, on.day) == (2, 28) and not calendar.isleap(on.year):
        days.append((2, 29))
    query = Q()
    for month, day in days:
        query |= Q(birth_date__month=month, birth_date__day=day)
    return Member.objects.filter(query, status=Member.Status.ACTIVE)


def birthdays_due(*, on: date) -> list[int]:
    """The members to reward for their birthday ``on`` and not rewarded yet this year, in id
    order (what the job splits in chunks: a second run finds none)."""
    rewarded = EngagementEvent.objects.filter(
        kind__code="birthday", reference=birthday_reference(on)
    ).values("member_id")
    return list(
        birthday_members(on=on).exclude(pk__in=rewarded).order_by("pk").values_list("pk", flat=True)
    )


# --- The work queues of customer service (the /reviews/ and /moderation/ pages) ---------------


def purchase_reviews(
    *,
    status: str = PurchaseReview.Status.OPEN,
    store: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
) -> QuerySet[PurchaseReview]:
    """Purchases the abuse guard stopped, in ``status``, with their purchase, member and decider
    in one query. Open ones oldest first (the queue's order); decided ones the latest decision
    first. ``store`` (exact) and the purchase's time in [``start``, ``end``) narrow the list."""
    rows = PurchaseReview.objects.filter(status=status).select_related(
        "purchase", "member", "decided_by"
    )
    if store:
        rows = rows.filter(purchase__store=store)
    if start is not None:
        rows = rows.filter(purchase__occurred_at__gte=start)
    if end is not None:
        rows = rows.filter(purchase__occurred_at__lt=end)
    if status == PurchaseReview.Status.OPEN:
        return rows.order_by("created_at", "pk")
    return rows.order_by("-decided_at", "-pk")


def purchase_review_stores() -> list[str]:
    """The stores of the purchases in the review queue, for its filter (one query)."""
    return list(
        PurchaseReview.objects.exclude(purchase__store="")
        .order_by("purchase__store")
        .values_list("purchase__store", flat=True)
        .distinct()
    )


def events_awaiting_moderation(*, kind_id: int | None = None) -> QuerySet[EngagementEvent]:
    """Engagement events waiting for a moderator, oldest first, with their member and kind in
    one query (index event_moderation: status, created_at)."""
    rows = EngagementEvent.objects.filter(status=EngagementEvent.Status.PENDING)
    if kind_id is not None:
        rows = rows.filter(kind_id=kind_id)
    return rows.select_related("member", "kind").order_by("created_at", "pk")


# -- the earning-rule editor ----------------------------------------------------------------

# How long the values the rule editor's pickers offer are kept (per process): marketing edits a
# rule for minutes, and a store opened since then is typed in the "others" box meanwhile.
PICKER_CACHE_SECONDS = 300
PICKER_LIMIT = 100


def rule_condition_values() -> dict[str, list[str]]:
    """What the rule editor's pickers offer: every channel purchases came through, and the
    stores and categories of the newest purchases (ledger.selectors.purchase_values_recent:
    bounded, never a DISTINCT over the table). SKUs are too many to list: they are searched
    (`rule_condition_search`). Three queries, then none for PICKER_CACHE_SECONDS."""
    # The suite turns the per-process caches off (0) to see its own rows at once.
    ttl = PICKER_CACHE_SECONDS if settings.LOYALTY_CONFIG_CACHE_SECONDS else 0
    return config_cache.cached(
        "rule-condition-values",
        lambda: {
            "channels": ledger_selectors.purchase_channels_seen(limit=PICKER_LIMIT),
            "stores": ledger_selectors.purchase_values_recent(field="store", limit=PICKER_LIMIT),
            "categories": ledger_selectors.purchase_values_recent(
                field="category", limit=PICKER_LIMIT
            ),
            "skus": [],
        },
        ttl=ttl,
    )


# The editor's condition (a rule field) → the purchase or line field its values are seen in.
SEARCHABLE_CONDITIONS = {"skus": "sku", "categories": "category", "stores": "store"}


def rule_condition_search(condition: str, prefix: str, *, limit: int = 20) -> list[str]:
    """Values of a rule's condition (`skus`, `categories`, `stores`) seen in recent purchases
    that start with `prefix` (any case): the editor's suggestions while a value is typed."""
    return ledger_selectors.purchase_values_recent(
        field=SEARCHABLE_CONDITIONS[condition], prefix=prefix, limit=limit
    )
