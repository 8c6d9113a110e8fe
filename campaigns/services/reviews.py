"""The review queue: purchases the abuse guard held back, approved or rejected by staff.

Each decision is a staff change: besides ``decided_by``/``decided_at`` on the review, it writes an
audit entry (``members.AuditEntry``) with the reason the staff user gave, in the same
transaction, so the audit log holds who, when and why.
"""

from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from campaigns.errors import (
    NotPending,
)
from campaigns.models import (
    EarningAward,
    EarningRule,
    PurchaseReview,
)
from campaigns.services.budgets import campaign_budgets_give_back
from campaigns.services.locks import member_lock
from campaigns.services.purchases import purchase_followups, purchase_points_post
from campaigns.services.returns import returns_settle
from ledger.models import Purchase
from members.services import audit_record


def _claim_review(review: PurchaseReview, status: str, actor) -> PurchaseReview:
    claimed = PurchaseReview.objects.filter(pk=review.pk, status=PurchaseReview.Status.OPEN).update(
        status=status, decided_by=actor, decided_at=timezone.now()
    )
    if not claimed:
        raise NotPending()
    return PurchaseReview.objects.select_related("purchase", "member").get(pk=review.pk)


def _review_audit(review: PurchaseReview, action: str, actor, reason: str) -> None:
    audit_record(
        actor=actor,
        action=action,
        member=review.member,
        reason=(reason or "").strip(),
        details={
            "review_id": review.pk,
            "purchase_id": review.purchase_id,
            "points": review.points,
        },
    )


@transaction.atomic
def purchase_review_approve(*, review: PurchaseReview, actor, reason: str = "") -> PurchaseReview:
    member_lock(review.member)
    review = _claim_review(review, PurchaseReview.Status.APPROVED, actor)
    _review_audit(review, "purchase_review_approve", actor, reason)
    purchase = review.purchase
    Purchase.objects.filter(pk=purchase.pk).update(status=Purchase.Status.RECORDED)
    purchase.status = Purchase.Status.RECORDED
    purchase_points_post(
        member=review.member,
        purchase=purchase,
        points=review.points,
        explanation=review.explanation,
    )
    # A return recorded while the purchase waited takes its share back at once.
    returns_settle(purchase=purchase)
    lines = list(purchase.lines.values("sku", "category", "quantity", "amount"))
    first = not Purchase.objects.filter(
        member=review.member, occurred_at__lt=purchase.occurred_at
    ).exists()
    purchase_followups(member=review.member, purchase=purchase, lines=lines, first=first)
    return review


@transaction.atomic
def purchase_review_reject(*, review: PurchaseReview, actor, reason: str = "") -> PurchaseReview:
    member_lock(review.member)
    review = _claim_review(review, PurchaseReview.Status.REJECTED, actor)
    _review_audit(review, "purchase_review_reject", actor, reason)
    Purchase.objects.filter(pk=review.purchase_id).update(status=Purchase.Status.REJECTED)
    # The held points never reached the ledger; give the budgets and per-member caps back.
    awards = EarningAward.objects.filter(purchase_id=review.purchase_id)
    for award in awards.select_related("rule"):
        if award.rule.budget_points is not None:
            EarningRule.objects.filter(pk=award.rule_id).update(
                budget_spent=F("budget_spent") - award.points
            )
    # Campaigns after the rules (the lock order), as if the purchase had been returned whole.
    campaign_budgets_give_back(
        purchase=review.purchase,
        earned=review.points,
        reversed_before=0,
        reversed_after=review.points,
    )
    awards.delete()
    return review
