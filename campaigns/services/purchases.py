"""A purchase from any channel: store it, evaluate the rules, post the points, follow up.

`purchase_record` is the one use case behind `POST purchases/`, the admin and the imports; its
steps run top to bottom in one transaction, under the member's row lock (see `locks`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns import engine, selectors
from campaigns.models import (
    AbuseRule,
    EarningAward,
    EarningRule,
    PurchasePoints,
    PurchaseReview,
)
from campaigns.services.abuse import abuse_check
from campaigns.services.budgets import (
    campaign_budgets_take,
    campaign_limits_lock,
    campaign_points,
    member_facts_with,
)
from campaigns.services.challenges import challenges_advance
from campaigns.services.locks import balance_of, card_active, member_lock
from campaigns.services.referrals import referral_reward
from campaigns.tiers import tier_upgrade_on_earn
from ledger import services as ledger_services
from ledger.models import Entry, PendingEarn, Purchase
from members import config_cache
from members.models import Card, Member, TierHistory
from members.rows import Rows

_awards = Rows(EarningAward)
_purchase_points = Rows(PurchasePoints)


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


def pending_until_for(*, channel: str, at: datetime) -> datetime | None:
    days = settings.LOYALTY_PENDING_DAYS_BY_CHANNEL.get(channel, settings.LOYALTY_PENDING_DAYS)
    return at + timedelta(days=days) if days else None


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


def purchase_points_post(
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
        reason_code="purchase",
        reason_params={"id": purchase.external_id},
        explanation=explanation,
        purchase=purchase,
        pending_until=pending_until_for(channel=purchase.channel, at=at or timezone.now()),
        at=at,
    )
    # Backdated imports leave tiers to the bulk recalculation that follows them.
    tier_change = None
    if at is None:
        tier_change = tier_upgrade_on_earn(member=member, channel=purchase.channel)
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
    unique: a repeat is refused by `purchase_store_first` (a channel's Idempotency-Key is the
    API's business, see loyalty_site.api.idempotency). `backdate` posts the points at
    `occurred_at` instead of now (demo data and imports of past purchases); tiers are then left
    to `tiers_recalculate`, which such an import runs afterwards. `savepoint=False` is for a
    caller whose transaction is rolled back as a whole when this fails (the API's write): it
    saves the SAVEPOINT/RELEASE pair.
    """
    card = None
    if member is None and member_id is None and card_number:
        # Kept on the purchase: the abuse guard counts purchases per card.
        card = card_active(card_number)
        member = card.member
    with transaction.atomic(savepoint=savepoint):
        return _purchase_record(
            member=member_lock(member=member, member_id=member_id, card_number=card_number),
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
    # Campaign rules: the member's audiences, and budgeted campaigns locked (after the rules).
    limits = campaign_limits_lock(member=member, rules=rules, at=occurred_at)
    evaluation = engine.evaluate(
        purchase=purchase_facts(purchase, lines),
        member=member_facts_with(facts, limits),
        rules=[selectors.rule_spec_shared(r) for r in rules],
        campaign_budget=limits.budget_left,
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
    if limits.campaigns:
        # Held points (under review) count too: approving them posts what was awarded here.
        campaign_budgets_take(
            member=member, limits=limits, points=campaign_points(evaluation, rules)
        )
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
        posted, tier_change = purchase_points_post(
            member=member,
            purchase=purchase,
            points=points,
            explanation=explanation,
            at=occurred_at if backdate else None,
            recorded=points_recorded,
        )
        extras += purchase_followups(member=member, purchase=purchase, lines=lines, first=first)

    if isinstance(posted, Entry) and not extras:
        # The entry just posted holds the balance (the account row is still locked), and an
        # entry (not a pending earn) means pending points did not change: no re-read. Extras
        # (a referral or challenge reward) may have posted more, so they do re-read.
        balance, pending = posted.balance_after, posted.account.pending
    else:
        balance, pending = balance_of(member)
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
    # Written through members.rows (bulk_create without compiling it on every purchase).
    _awards.insert(
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
        _purchase_points.insert([PurchasePoints(purchase=purchase, points=purchase_points)])
    for award in awards:
        if award.rule_id in budgeted:
            # The rule rows are locked; the CHECK constraint refuses an overspend regardless.
            EarningRule.objects.filter(pk=award.rule_id).update(
                budget_spent=F("budget_spent") + award.points
            )


def purchase_followups(
    *, member: Member, purchase: Purchase, lines: list[dict], first: bool
) -> list[dict]:
    extras = []
    if first:
        extras += referral_reward(referred=member, purchase=purchase)
    extras += challenges_advance(member=member, purchase=purchase, lines=lines)
    return extras
