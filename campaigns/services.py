"""Every write of the campaigns app: purchases and returns, engagement, referrals, challenges,
the abuse review queue.

Locking order, to keep concurrent requests from deadlocking: the member row first (it serialises
one member's purchases, events and returns, which makes first-purchase bonuses, per-member caps
and velocity checks exact), then budgeted earning rules by id, then the ledger's account row
(taken inside ledger.services).
"""

from __future__ import annotations

import copy
import functools
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_FLOOR, Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Avg, Count, F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from campaigns import engine, selectors
from campaigns.models import (
    AbuseRule,
    Badge,
    Challenge,
    ChallengeProgress,
    EarningAward,
    EarningRule,
    EngagementEvent,
    EngagementKind,
    MemberBadge,
    PurchasePoints,
    PurchaseReview,
    Referral,
    ReferralCode,
)
from ledger import services as ledger_services
from ledger.models import Entry, PendingEarn, Purchase, Return
from loyalty_site.errors import Conflict, DomainError, NotFound
from members import config_cache
from members.models import Card, Member, TierHistory

try:  # Written by the members helper; tier upgrades start working as soon as it lands.
    from campaigns.tiers import tier_upgrade_on_earn, tiers_cached
except ImportError:  # pragma: no cover
    tier_upgrade_on_earn = None

    def tiers_cached() -> list:
        return []


class UnknownMember(NotFound):
    code = "member_not_found"
    default_detail = _("No member with this id or card.")


class CardNotActive(Conflict):
    code = "card_blocked"
    default_detail = _("This card is blocked or replaced.")


class EngagementLimitReached(Conflict):
    code = "engagement_limit_reached"
    default_detail = _("The member reached the limit for this kind of event.")


class DuplicateEvent(Conflict):
    code = "duplicate_event"
    default_detail = _("This event was already recorded.")


class NotPending(Conflict):
    code = "not_pending"
    default_detail = _("This item was already decided.")


class InvalidReferral(DomainError):
    code = "invalid_referral"
    default_detail = _("This referral code is unknown or cannot be used by this member.")


@dataclass
class PurchaseResult:
    purchase: Purchase
    points_earned: int
    rules: list[dict]
    balance: int
    pending: int = 0
    status: str = Purchase.Status.RECORDED
    review_reason: str = ""
    extras: list[dict] = field(default_factory=list)
    # The member's tier history row when this purchase moved them up a tier.
    tier_change: TierHistory | None = None


@dataclass
class ReturnResult:
    return_record: Return
    points_reversed: int
    balance: int


@functools.cache
def _member_lock_sql() -> str:
    """SELECT … FOR UPDATE of a member by public id, unless erased: every column, for raw()."""
    columns = ", ".join(connection.ops.quote_name(f.column) for f in Member._meta.concrete_fields)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (
        f"SELECT {columns} FROM {connection.ops.quote_name(Member._meta.db_table)} "
        f"WHERE public_id = %s AND status <> %s{lock}"
    )


def _lock_member(
    member: Member | None = None, *, member_id=None, card_number: str | None = None
) -> Member:
    """The member row, locked (FOR UPDATE), found by instance, public id or card number."""
    if member is None and member_id is not None:
        # One query: the lookup is the lock. Written out once rather than compiled by the ORM
        # on every purchase, where compiling it cost more than running it.
        public_id = Member._meta.get_field("public_id").get_db_prep_value(member_id, connection)
        found = next(
            iter(Member.objects.raw(_member_lock_sql(), [public_id, Member.Status.ERASED])), None
        )
        if found is None:
            raise UnknownMember()
    else:
        member = _resolve_member(member, card_number)
        found = Member.objects.select_for_update().get(pk=member.pk)
    if found.tier_id is not None:
        # The earning rules read the member's tier: from the cached ladder, not a query.
        tier = next((t for t in tiers_cached() if t.pk == found.tier_id), None)
        if tier is not None:
            Member.tier.field.set_cached_value(found, tier)
    return found


def _resolve_member(member: Member | None, card_number: str | None) -> Member:
    if member is not None:
        return member
    return _active_card(card_number).member


def _active_card(card_number: str | None) -> Card:
    if not card_number:
        raise UnknownMember()
    card = Card.objects.select_related("member").filter(number=card_number).first()
    if card is None:
        raise UnknownMember()
    if card.status != Card.Status.ACTIVE:
        raise CardNotActive()
    return card


def pending_until_for(*, channel: str, at: datetime) -> datetime | None:
    days = settings.LOYALTY_PENDING_DAYS_BY_CHANNEL.get(channel, settings.LOYALTY_PENDING_DAYS)
    return at + timedelta(days=days) if days else None


def _balance(member: Member) -> tuple[int, int]:
    from ledger.models import Account

    account = Account.objects.filter(member=member).only("balance", "pending").first()
    return (account.balance, account.pending) if account else (0, 0)


# --- Abuse guard -------------------------------------------------------------------------------


def abuse_check(
    *, member: Member, purchase: Purchase, points: int, rules: list[AbuseRule] | None = None
) -> str:
    """The reason the first tripped guard gives, or "" when the purchase looks normal."""
    rules = rules if rules is not None else list(AbuseRule.objects.filter(active=True))
    at = purchase.occurred_at
    others = Purchase.objects.filter(member=member).exclude(pk=purchase.pk)
    for rule in rules:
        limit = rule.threshold
        if rule.kind == AbuseRule.Kind.MEMBER_VELOCITY:
            count = others.filter(occurred_at__gt=at - timedelta(hours=1), occurred_at__lte=at)
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase by this member in an hour.",
                    "More than %(n)s purchases by this member in an hour.",
                    int(limit),
                ) % {"n": limit}
        elif rule.kind == AbuseRule.Kind.CARD_VELOCITY:
            # Only purchases that presented a card count; one by member id has no card.
            if purchase.card_id is None:
                continue
            count = Purchase.objects.filter(
                card_id=purchase.card_id,
                occurred_at__gt=at - timedelta(hours=1),
                occurred_at__lte=at,
            ).exclude(pk=purchase.pk)
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase with this card in an hour.",
                    "More than %(n)s purchases with this card in an hour.",
                    int(limit),
                ) % {"n": limit}
        elif rule.kind == AbuseRule.Kind.STORE_VELOCITY:
            count = others.filter(
                store=purchase.store, occurred_at__gt=at - timedelta(hours=1), occurred_at__lte=at
            )
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase by this member in one store in an hour.",
                    "More than %(n)s purchases by this member in one store in an hour.",
                    int(limit),
                ) % {"n": limit}
        elif rule.kind == AbuseRule.Kind.POINTS_PER_DAY:
            earned = (
                EarningAward.objects.filter(
                    member=member, occurred_at__gt=at - timedelta(days=1), occurred_at__lte=at
                )
                .exclude(purchase=purchase)
                .aggregate(total=Sum("points"))["total"]
                or 0
            )
            if earned + points > limit:
                return ngettext(
                    "More than %(n)s point in a day.",
                    "More than %(n)s points in a day.",
                    int(limit),
                ) % {"n": limit}
        elif rule.kind == AbuseRule.Kind.ABOVE_NORM:
            history = others.filter(status=Purchase.Status.RECORDED).aggregate(
                n=Count("id"), avg=Avg("amount")
            )
            if (
                history["n"] >= rule.min_history
                and history["avg"]
                and purchase.amount > Decimal(history["avg"]) * limit
            ):
                return gettext("Amount is more than %(n)s times this member's average.") % {
                    "n": limit
                }
        elif (
            rule.kind == AbuseRule.Kind.NEW_CARDS
            and purchase.store
            and member.enrolled_at > at - timedelta(days=1)
        ):
            newcomers = (
                Purchase.objects.filter(
                    store=purchase.store,
                    occurred_at__gt=at - timedelta(days=1),
                    occurred_at__lte=at,
                    member__enrolled_at__gt=at - timedelta(days=1),
                )
                .values("member")
                .distinct()
                .count()
            )
            if newcomers > limit:
                return ngettext(
                    "More than %(n)s new member bought in this store today.",
                    "More than %(n)s new members bought in this store today.",
                    int(limit),
                ) % {"n": limit}
    return ""


# --- Purchases ---------------------------------------------------------------------------------


def _lines_as_dicts(lines) -> list[dict]:
    return [
        {
            "sku": str(line.get("sku", "")),
            "category": str(line.get("category", "")),
            "quantity": int(line.get("quantity", 1)),
            "amount": Decimal(str(line["amount"])),
        }
        for line in lines
    ]


def purchase_facts(purchase: Purchase, lines: list[dict]) -> engine.PurchaseFacts:
    return engine.PurchaseFacts(
        amount=Decimal(purchase.amount),
        occurred_at=timezone.localtime(purchase.occurred_at),
        channel=purchase.channel,
        store=purchase.store,
        currency=purchase.currency,
        lines=tuple(
            engine.LineFacts(line["sku"], line["category"], line["quantity"], line["amount"])
            for line in lines
        ),
    )


def _post_purchase_points(
    *,
    member: Member,
    purchase: Purchase,
    points: int,
    explanation: list[dict],
    at: datetime | None = None,
    recorded: bool = False,
) -> tuple[Entry | PendingEarn | None, TierHistory | None]:
    """Post a purchase's points; `recorded`: its PurchasePoints row is written already.

    Returns what was posted and the tier change it caused, if any.
    """
    if points <= 0:
        return None, None
    if not recorded:
        PurchasePoints.objects.create(purchase=purchase, points=points)
    posted = ledger_services.points_earn(
        member=member,
        points=points,
        channel=purchase.channel,
        reference=f"purchase:{purchase.pk}",
        reason=gettext("Purchase %(id)s") % {"id": purchase.external_id},
        explanation=explanation,
        purchase=purchase,
        pending_until=pending_until_for(channel=purchase.channel, at=at or timezone.now()),
        at=at,
    )
    # Backdated imports leave tiers to the bulk recalculation that follows them.
    tier_change = None
    if tier_upgrade_on_earn is not None and at is None:
        tier_change = tier_upgrade_on_earn(member=member)
    return posted, tier_change


def purchase_record(
    *,
    member: Member | None = None,
    member_id=None,
    card_number: str | None = None,
    channel: str,
    external_id: str,
    amount: Decimal,
    currency: str,
    occurred_at: datetime | None = None,
    store: str = "",
    lines=(),
    backdate: bool = False,
    savepoint: bool = True,
) -> PurchaseResult:
    """Store a purchase and earn its points, all or nothing.

    The member is given as `member`, as its public id `member_id` (looked up and locked in one
    query), or as `card_number`. The (channel, external_id) pair is what makes a purchase
    unique, and a repeat is refused by the ledger (`purchase_store_first`).
    `backdate` posts the points at `occurred_at` instead of now (demo data and
    imports of past purchases); tiers are then left to `tiers_recalculate`, which such an import
    runs afterwards. `savepoint=False` is for a caller whose transaction is rolled back as a
    whole when this fails (the API's write): it saves the SAVEPOINT/RELEASE pair.
    """
    card = None
    if member is None and member_id is None and card_number:
        # Kept on the purchase: the abuse guard counts purchases per card.
        card = _active_card(card_number)
        member = card.member
    with transaction.atomic(savepoint=savepoint):
        return _purchase_record(
            member=_lock_member(member=member, member_id=member_id, card_number=card_number),
            card=card,
            channel=channel,
            external_id=external_id,
            amount=amount,
            currency=currency,
            occurred_at=occurred_at,
            store=store,
            lines=lines,
            backdate=backdate,
        )


def _purchase_record(
    *,
    member: Member,
    channel: str,
    external_id: str,
    amount: Decimal,
    currency: str,
    occurred_at: datetime | None,
    store: str,
    lines,
    backdate: bool,
    card: Card | None = None,
) -> PurchaseResult:
    occurred_at = occurred_at or timezone.now()
    lines = _lines_as_dicts(lines)
    # Every error below propagates and rolls purchase_record's transaction back whole, so the
    # ledger's steps need no savepoints of their own.
    # The member row is locked: whether this is the first purchase cannot change meanwhile.
    purchase, first = ledger_services.purchase_store_first(
        member=member,
        channel=channel,
        external_id=external_id,
        amount=Decimal(str(amount)),
        currency=currency,
        occurred_at=occurred_at,
        store=store,
        lines=lines,
        card=card,
    )

    # Budgeted rules are locked so that two purchases cannot both spend the last of a budget.
    # The rules come from the per-process copy (config_cache); the spent budget is read here.
    rules = selectors.rules_active_cached(occurred_at)
    budgeted = [r.pk for r in rules if r.budget_points is not None]
    if budgeted:
        spent = dict(
            EarningRule.objects.select_for_update()
            .filter(pk__in=budgeted)
            .order_by("pk")
            .values_list("pk", "budget_spent")
        )
        rules = [copy.copy(rule) if rule.pk in spent else rule for rule in rules]
        for rule in rules:
            if rule.pk in spent:
                rule.budget_spent = spent[rule.pk]
    facts = selectors.member_facts(member=member, rules=rules, at=occurred_at, first_purchase=first)
    evaluation = engine.evaluate(
        purchase=purchase_facts(purchase, lines),
        member=facts,
        rules=[selectors.rule_spec_shared(r) for r in rules],
    )
    points = evaluation.points
    explanation = evaluation.explanation()
    abuse_rules = config_cache.cached(
        "abuse-rules", lambda: list(AbuseRule.objects.filter(active=True))
    )
    # The abuse guard ignores this purchase's own awards, so they may be stored after it:
    # together with the purchase's points record, in one statement.
    reason = (
        abuse_check(member=member, purchase=purchase, points=points, rules=abuse_rules)
        if points and abuse_rules
        else ""
    )
    points_recorded = not reason and points > 0
    _awards_store(
        member=member,
        purchase=purchase,
        evaluation=evaluation,
        budgeted=set(budgeted),
        purchase_points=points if points_recorded else None,
    )
    status = Purchase.Status.RECORDED
    extras: list[dict] = []
    posted = tier_change = None
    if reason:
        status = Purchase.Status.UNDER_REVIEW
        Purchase.objects.filter(pk=purchase.pk).update(status=status)
        purchase.status = status
        PurchaseReview.objects.create(
            purchase=purchase, member=member, reason=reason, points=points, explanation=explanation
        )
    else:
        posted, tier_change = _post_purchase_points(
            member=member,
            purchase=purchase,
            points=points,
            explanation=explanation,
            at=occurred_at if backdate else None,
            recorded=points_recorded,
        )
        extras += _purchase_followups(member=member, purchase=purchase, lines=lines, first=first)

    if isinstance(posted, Entry) and not extras:
        # The entry just posted holds the balance (the account row is still locked), and an
        # entry (not a pending earn) means pending points did not change: no re-read. Extras
        # (a referral or challenge reward) may have posted more, so they do re-read.
        balance, pending = posted.balance_after, posted.account.pending
    else:
        balance, pending = _balance(member)
    return PurchaseResult(
        purchase=purchase,
        points_earned=0 if reason else points,
        rules=explanation,
        balance=balance,
        pending=pending + (points if reason else 0),
        status=status,
        review_reason=reason,
        extras=extras,
        tier_change=tier_change,
    )


def _awards_store(
    *,
    member: Member,
    purchase: Purchase,
    evaluation: engine.Evaluation,
    budgeted: set[int],
    purchase_points: int | None = None,
) -> None:
    """The rules' awards, and with `purchase_points` the purchase's PurchasePoints row."""
    awards = [a for a in evaluation.awards if a.rule_id is not None]
    if connection.vendor == "postgresql" and purchase_points is not None:
        _awards_and_points_insert(
            member=member, purchase=purchase, awards=awards, points=purchase_points
        )
    else:
        EarningAward.objects.bulk_create(
            [
                EarningAward(
                    rule_id=a.rule_id,
                    member=member,
                    purchase=purchase,
                    points=a.points,
                    occurred_at=purchase.occurred_at,
                )
                for a in awards
            ]
        )
        if purchase_points is not None:
            PurchasePoints.objects.create(purchase=purchase, points=purchase_points)
    for award in awards:
        if award.rule_id in budgeted:
            # The rule rows are locked; the CHECK constraint refuses an overspend regardless.
            EarningRule.objects.filter(pk=award.rule_id).update(
                budget_spent=F("budget_spent") + award.points
            )


def _awards_and_points_insert(
    *, member: Member, purchase: Purchase, awards: list, points: int
) -> None:
    points_sql = (
        f"INSERT INTO {PurchasePoints._meta.db_table} (purchase_id, points, points_reversed) "
        "VALUES (%s, %s, 0)"
    )
    params: list = []
    if awards:
        values = ", ".join(["(%s, %s, %s, %s, %s)"] * len(awards))
        points_sql = (
            f"WITH award AS (INSERT INTO {EarningAward._meta.db_table} "
            f"(rule_id, member_id, purchase_id, points, occurred_at) VALUES {values}) " + points_sql
        )
        for a in awards:
            params += [a.rule_id, member.pk, purchase.pk, a.points, purchase.occurred_at]
    with connection.cursor() as cursor:
        cursor.execute(points_sql, [*params, purchase.pk, points])


def _purchase_followups(
    *, member: Member, purchase: Purchase, lines: list[dict], first: bool
) -> list[dict]:
    extras = []
    if first:
        extras += referral_reward(referred=member, purchase=purchase)
    extras += challenges_advance(member=member, purchase=purchase, lines=lines)
    return extras


@transaction.atomic
def return_record(
    *, purchase: Purchase, lines=None, amount: Decimal | None = None, external_id: str = ""
) -> ReturnResult:
    """Record a full or partial return and take back the purchase's points in proportion.

    `lines` is a list of {"line_id", "quantity"}; without lines, `amount` (default: all that is
    left). What to take back is computed from all returns so far, not from this one alone, so
    rounding never takes back more than was earned and a full return always takes back all.
    Pending points are cancelled first, then posted ones are reversed: the balance may go below
    zero (invariant 2: a clawback may create debt).
    """
    member = _lock_member(purchase.member)
    purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
    if lines is not None:
        lines = [
            {"line": int(item["line_id"]), "quantity": int(item["quantity"])} for item in lines
        ]
    record = ledger_services.return_store(
        purchase=purchase,
        lines=lines,
        amount=Decimal(str(amount)) if amount is not None else None,
        external_id=external_id,
    )
    taken = _returns_settle(purchase=purchase)
    balance, _pending = _balance(member)
    return ReturnResult(return_record=record, points_reversed=taken, balance=balance)


def _returns_settle(*, purchase: Purchase) -> int:
    """Take back the share of the purchase's points that its returns so far call for."""
    returned = purchase.returns.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    earned = PurchasePoints.objects.select_for_update().filter(purchase=purchase).first()
    if earned is None or purchase.amount <= 0 or returned <= 0:
        return 0
    if returned >= purchase.amount:
        target = earned.points
    else:
        share = Decimal(earned.points) * returned / purchase.amount
        target = int(share.to_integral_value(ROUND_FLOOR))
    todo = max(target - earned.points_reversed, 0)
    taken = _take_back(purchase=purchase, points=todo)
    PurchasePoints.objects.filter(pk=earned.pk).update(points_reversed=F("points_reversed") + taken)
    return taken


def _take_back(*, purchase: Purchase, points: int) -> int:
    reason = gettext("Return of purchase %(id)s") % {"id": purchase.external_id}
    taken = 0
    pendings = PendingEarn.objects.filter(
        purchase=purchase, status=PendingEarn.Status.PENDING
    ).order_by("id")
    for pending in pendings:
        take = min(pending.points, points - taken)
        if take > 0:
            ledger_services.pending_cancel(pending=pending, points=take)
            taken += take
    entries = Entry.objects.filter(purchase=purchase, kind=Entry.Kind.EARN).order_by("id")
    for entry in entries:
        if taken >= points:
            break
        done = -(
            Entry.objects.filter(refers_to=entry, kind=Entry.Kind.REVERSE).aggregate(
                total=Sum("amount")
            )["total"]
            or 0
        )
        take = min(entry.amount - done, points - taken)
        if take > 0:
            ledger_services.points_reverse(
                entry=entry, points=take, reason=reason, channel=purchase.channel
            )
            taken += take
    return taken


# --- Review queue ------------------------------------------------------------------------------


def _claim_review(review: PurchaseReview, status: str, actor) -> PurchaseReview:
    claimed = PurchaseReview.objects.filter(pk=review.pk, status=PurchaseReview.Status.OPEN).update(
        status=status, decided_by=actor, decided_at=timezone.now()
    )
    if not claimed:
        raise NotPending()
    return PurchaseReview.objects.select_related("purchase", "member").get(pk=review.pk)


@transaction.atomic
def purchase_review_approve(*, review: PurchaseReview, actor) -> PurchaseReview:
    _lock_member(review.member)
    review = _claim_review(review, PurchaseReview.Status.APPROVED, actor)
    purchase = review.purchase
    Purchase.objects.filter(pk=purchase.pk).update(status=Purchase.Status.RECORDED)
    purchase.status = Purchase.Status.RECORDED
    _post_purchase_points(
        member=review.member,
        purchase=purchase,
        points=review.points,
        explanation=review.explanation,
    )
    # A return recorded while the purchase waited takes its share back at once.
    _returns_settle(purchase=purchase)
    lines = list(purchase.lines.values("sku", "category", "quantity", "amount"))
    first = not Purchase.objects.filter(
        member=review.member, occurred_at__lt=purchase.occurred_at
    ).exists()
    _purchase_followups(member=review.member, purchase=purchase, lines=lines, first=first)
    return review


@transaction.atomic
def purchase_review_reject(*, review: PurchaseReview, actor) -> PurchaseReview:
    _lock_member(review.member)
    review = _claim_review(review, PurchaseReview.Status.REJECTED, actor)
    Purchase.objects.filter(pk=review.purchase_id).update(status=Purchase.Status.REJECTED)
    # The held points never reached the ledger; give the budgets and per-member caps back.
    awards = EarningAward.objects.filter(purchase_id=review.purchase_id)
    for award in awards.select_related("rule"):
        if award.rule.budget_points is not None:
            EarningRule.objects.filter(pk=award.rule_id).update(
                budget_spent=F("budget_spent") - award.points
            )
    awards.delete()
    return review


# --- Engagement --------------------------------------------------------------------------------


def _kind(kind: EngagementKind | str) -> EngagementKind:
    if isinstance(kind, EngagementKind):
        return kind
    found = EngagementKind.objects.filter(code=kind, active=True).first()
    if found is None:
        raise NotFound(code="unknown_event_kind")
    return found


def _credit_event(event: EngagementEvent) -> None:
    if event.points > 0:
        ledger_services.points_earn(
            member=event.member,
            points=event.points,
            channel=event.channel,
            reference=f"event:{event.pk}",
            reason=str(event.kind.name),
            explanation=[{"rule": event.kind.name, "rule_id": None, "points": event.points}],
        )
        if tier_upgrade_on_earn is not None:
            tier_upgrade_on_earn(member=event.member)
    EngagementEvent.objects.filter(pk=event.pk).update(status=EngagementEvent.Status.CREDITED)
    event.status = EngagementEvent.Status.CREDITED
    challenges_advance(member=event.member, event=event)


@transaction.atomic
def event_record(
    *,
    member: Member,
    kind: EngagementKind | str,
    reference: str = "",
    channel: str = "",
    points: int | None = None,
    force_review: bool = False,
    at: datetime | None = None,
) -> EngagementEvent:
    kind = _kind(kind)
    member = _lock_member(member)
    at = at or timezone.now()
    if (
        reference
        and EngagementEvent.objects.filter(member=member, kind=kind, reference=reference).exists()
    ):
        raise DuplicateEvent()
    if kind.limit_count is not None:
        counted = EngagementEvent.objects.filter(member=member, kind=kind).exclude(
            status=EngagementEvent.Status.REJECTED
        )
        start = selectors.period_start(kind.limit_period, at)
        if start is not None:
            counted = counted.filter(created_at__gte=start)
        if counted.count() >= kind.limit_count:
            raise EngagementLimitReached()
    pending = kind.requires_approval or force_review
    try:
        with transaction.atomic():
            event = EngagementEvent.objects.create(
                member=member,
                kind=kind,
                reference=reference,
                channel=channel,
                points=kind.points if points is None else points,
                status=EngagementEvent.Status.PENDING
                if pending
                else EngagementEvent.Status.APPROVED,
                created_at=at,
            )
    except IntegrityError:
        raise DuplicateEvent() from None
    if not pending:
        _credit_event(event)
    return event


@transaction.atomic
def event_approve(*, event: EngagementEvent, actor) -> EngagementEvent:
    _lock_member(event.member)
    claimed = EngagementEvent.objects.filter(
        pk=event.pk, status=EngagementEvent.Status.PENDING
    ).update(status=EngagementEvent.Status.APPROVED, decided_by=actor, decided_at=timezone.now())
    if not claimed:
        raise NotPending()
    event = EngagementEvent.objects.select_related("member", "kind").get(pk=event.pk)
    _credit_event(event)
    return event


@transaction.atomic
def event_reject(*, event: EngagementEvent, actor) -> EngagementEvent:
    claimed = EngagementEvent.objects.filter(
        pk=event.pk, status=EngagementEvent.Status.PENDING
    ).update(status=EngagementEvent.Status.REJECTED, decided_by=actor, decided_at=timezone.now())
    if not claimed:
        raise NotPending()
    return EngagementEvent.objects.get(pk=event.pk)


# --- Referrals ---------------------------------------------------------------------------------

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@transaction.atomic
def referral_code_for(*, member: Member) -> ReferralCode:
    existing = ReferralCode.objects.filter(member=member).first()
    if existing:
        return existing
    for _attempt in range(5):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(member=member, code=code)
        except IntegrityError:
            found = ReferralCode.objects.filter(member=member).first()
            if found:
                return found
    raise Conflict(code="referral_code_exhausted")


@transaction.atomic
def referral_register(*, referred: Member, code: str) -> Referral:
    owner = ReferralCode.objects.filter(code=code.strip().upper()).select_related("member").first()
    if owner is None or owner.member_id == referred.pk:
        raise InvalidReferral()
    if Purchase.objects.filter(member=referred).exists():
        raise InvalidReferral(_("Only members who have not bought yet can be referred."))
    try:
        with transaction.atomic():
            return Referral.objects.create(referrer=owner.member, referred=referred)
    except IntegrityError:
        raise InvalidReferral(_("This member was already referred.")) from None


def _referral_kind() -> EngagementKind:
    kind, _created = EngagementKind.objects.get_or_create(
        code="referral",
        defaults={"name": gettext("Referral"), "points": settings.LOYALTY_REFERRAL_POINTS},
    )
    return kind


def referral_reward(*, referred: Member, purchase: Purchase) -> list[dict]:
    """Reward both parties once, when the referred member's first purchase lands.

    The conditional UPDATE claims the referral; a concurrent first purchase finds it claimed.
    """
    referral = Referral.objects.filter(referred=referred, rewarded_at__isnull=True).first()
    if referral is None:
        return []
    claimed = Referral.objects.filter(pk=referral.pk, rewarded_at__isnull=True).update(
        rewarded_at=timezone.now(), purchase=purchase
    )
    if not claimed:
        return []
    kind = _referral_kind()
    referrer_review = False
    for rule in AbuseRule.objects.filter(active=True, kind=AbuseRule.Kind.REFERRALS):
        recent = Referral.objects.filter(
            referrer_id=referral.referrer_id,
            rewarded_at__gt=timezone.now() - timedelta(days=1),
        ).count()
        if recent > rule.threshold:
            referrer_review = True
    reference = f"referral:{referral.pk}"
    extras = []
    for party, review in ((referral.referrer, referrer_review), (referred, False)):
        try:
            event = event_record(member=party, kind=kind, reference=reference, force_review=review)
        except (EngagementLimitReached, DuplicateEvent):
            continue
        extras.append({"rule": kind.name, "member": party.pk, "points": event.points})
    return extras


# --- Challenges and badges ---------------------------------------------------------------------


def badge_award(*, member: Member, badge: Badge) -> MemberBadge:
    try:
        with transaction.atomic():
            return MemberBadge.objects.create(member=member, badge=badge)
    except IntegrityError:
        return MemberBadge.objects.get(member=member, badge=badge)


def _challenge_step(
    challenge: Challenge,
    *,
    purchase: Purchase | None,
    lines: list[dict],
    event: EngagementEvent | None,
) -> Decimal:
    if challenge.goal == Challenge.Goal.PURCHASE_COUNT and purchase is not None:
        return Decimal(1)
    if challenge.goal == Challenge.Goal.SPEND and purchase is not None:
        if not challenge.category:
            return Decimal(purchase.amount)
        return sum(
            (Decimal(line["amount"]) for line in lines if line["category"] == challenge.category),
            Decimal(0),
        )
    if (
        challenge.goal == Challenge.Goal.EVENT_COUNT
        and event is not None
        and challenge.event_kind_id in (None, event.kind_id)
    ):
        return Decimal(1)
    return Decimal(0)


def challenges_advance(
    *,
    member: Member,
    purchase: Purchase | None = None,
    lines: list[dict] | None = None,
    event: EngagementEvent | None = None,
) -> list[dict]:
    """Move the member's progress on every active challenge the purchase or event counts for.

    Completion is claimed with a conditional UPDATE on `completed_at`, so the reward is given
    exactly once however many requests finish the challenge at the same moment.
    """
    at = purchase.occurred_at if purchase is not None else (event.created_at if event else None)
    at = at or timezone.now()
    completed = []
    for challenge in selectors.challenges_active_cached(at):
        step = _challenge_step(challenge, purchase=purchase, lines=lines or [], event=event)
        if step <= 0:
            continue
        # The member row is locked by every caller, so get-then-create cannot race here.
        progress = (
            ChallengeProgress.objects.select_for_update()
            .filter(challenge=challenge, member=member)
            .first()
        ) or ChallengeProgress.objects.create(challenge=challenge, member=member, window_start=at)
        if progress.completed_at is not None:
            continue
        if challenge.window_days and at > progress.window_start + timedelta(
            days=challenge.window_days
        ):
            progress.value, progress.window_start = Decimal(0), at
        progress.value += step
        progress.save(update_fields=["value", "window_start"])
        if progress.value < challenge.target:
            continue
        claimed = ChallengeProgress.objects.filter(
            pk=progress.pk, completed_at__isnull=True
        ).update(completed_at=at)
        if not claimed:
            continue
        if challenge.reward_points:
            ledger_services.points_earn(
                member=member,
                points=challenge.reward_points,
                reference=f"challenge:{challenge.pk}",
                reason=gettext("Challenge completed: %(name)s") % {"name": challenge.name},
                explanation=[
                    {
                        "rule": challenge.name,
                        "rule_id": None,
                        "points": challenge.reward_points,
                    }
                ],
            )
        if challenge.badge is not None:
            badge_award(member=member, badge=challenge.badge)
        completed.append({"challenge": challenge.name, "points": challenge.reward_points})
    return completed


# --- Birthdays ---------------------------------------------------------------------------------


def birthdays_reward(*, on: date | None = None) -> int:
    """Record the "birthday" engagement event for members whose birthday is today.

    The reference carries the year, so the unique (member, kind, reference) constraint makes a
    second run on the same day (or a concurrent one) reward nobody twice. One short transaction
    per member: a slow night never holds many locks.
    """
    kind = EngagementKind.objects.filter(code="birthday", active=True).first()
    if kind is None:
        return 0
    on = on or timezone.localdate()
    days = [(on.month, on.day)]
    if (on.month, on.day) == (2, 28) and not _is_leap(on.year):
        days.append((2, 29))
    query = Q()
    for month, day in days:
        query |= Q(birth_date__month=month, birth_date__day=day)
    members = Member.objects.filter(query, status=Member.Status.ACTIVE).only("pk")
    rewarded = 0
    for member in members.iterator(chunk_size=1000):
        try:
            event_record(member=member, kind=kind, reference=f"birthday:{on.year}")
        except (DuplicateEvent, EngagementLimitReached):
            continue
        rewarded += 1
    return rewarded


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
