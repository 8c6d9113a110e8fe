"""Staff adjustments: a small one posts at once, a larger one waits for a second staff user."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger import errors
from ledger.models import Account, AdjustmentRequest, Entry
from ledger.services.posting import _lock, _lock_member_account, _post, _reason
from loyalty_site.errors import DomainError
from members.models import Member


def _adjust_post(account: Account, *, points: int, reason: str, actor, at: datetime, **fields):
    if points < 0 and account.available < -points:
        raise errors.InsufficientPoints()
    return _post(
        account, kind=Entry.Kind.ADJUST, amount=points, at=at, reason=reason, actor=actor, **fields
    )


def adjustment_too_large() -> str:
    return _("An adjustment can move at most %(max)s points.") % {
        "max": settings.LOYALTY_ADJUSTMENT_MAX_POINTS
    }


def points_adjust(
    *,
    member: Member,
    points: int,
    reason: str,
    actor,
    at: datetime | None = None,
    reference: str = "",
) -> Entry | AdjustmentRequest:
    """A staff credit (points > 0) or debit (points < 0) with a reason.

    Above ``LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD`` points (either sign) nothing is posted yet:
    an AdjustmentRequest waits for a second staff user. A debit never takes the balance below 0.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points == 0:
        raise errors.InvalidPoints(_("The adjustment must be a whole number other than zero."))
    if abs(points) > settings.LOYALTY_ADJUSTMENT_MAX_POINTS:
        raise errors.InvalidPoints(adjustment_too_large())
    reason = _reason(reason)
    if actor is None:
        raise DomainError(_("A staff adjustment needs a staff user."), code="actor_required")
    at = at or timezone.now()
    with transaction.atomic():
        account = _lock_member_account(member)
        if abs(points) > settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD:
            return AdjustmentRequest.objects.create(
                account=account,
                points=points,
                reason=reason,
                requested_by=actor,
                requested_at=at,
            )
        return _adjust_post(
            account, points=points, reason=reason, actor=actor, at=at, reference=reference
        )


def _decide(request: AdjustmentRequest, actor) -> AdjustmentRequest:
    locked = AdjustmentRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != AdjustmentRequest.Status.PENDING:
        raise errors.RequestNotPending()
    if actor is None or actor.pk == locked.requested_by_id:
        raise errors.SelfApproval()
    return locked


def adjustment_approve(*, request: AdjustmentRequest, actor, at: datetime | None = None) -> Entry:
    """Post a waiting adjustment; the approver must be another staff user than the requester."""
    at = at or timezone.now()
    with transaction.atomic():
        account = _lock(request.account_id)
        locked = _decide(request, actor)
        entry = _adjust_post(
            account,
            points=locked.points,
            reason=locked.reason,
            actor=locked.requested_by,
            at=at,
            reference=f"adjustment-request:{locked.pk}",
        )
        locked.status = AdjustmentRequest.Status.APPROVED
        locked.decided_by = actor
        locked.decided_at = at
        locked.entry = entry
        locked.save(update_fields=["status", "decided_by", "decided_at", "entry"])
    request.refresh_from_db()
    return entry


def adjustment_reject(
    *, request: AdjustmentRequest, actor, reason: str = "", at: datetime | None = None
) -> AdjustmentRequest:
    at = at or timezone.now()
    with transaction.atomic():
        locked = _decide(request, actor)
        locked.status = AdjustmentRequest.Status.REJECTED
        locked.decided_by = actor
        locked.decided_at = at
        locked.decision_reason = (reason or "").strip()[:255]
        locked.save(update_fields=["status", "decided_by", "decided_at", "decision_reason"])
    request.refresh_from_db()
    return locked
