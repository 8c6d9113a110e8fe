"""Staff adjustments: a small one posts at once, a larger one waits for a second staff user.

Four eyes cannot be split: besides the per-adjustment threshold, each staff user may post at most
``LOYALTY_ADJUSTMENT_DAILY_LIMIT`` points (absolute sum, per day in the programme's time zone)
without a second person; beyond that an adjustment becomes an approval request too. Adjustments
that a second person approved do not count, they were checked already.

Lock order: the staff user's row, then the member's account. The user lock serialises one
agent's adjustments across members (two concurrent credits on different accounts would otherwise
both read the same day's sum and both slip under the limit); a row lock rather than a PostgreSQL
advisory lock, so that SQLite behaves the same. Nothing else locks user rows, so no deadlock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Sum
from django.db.models.functions import Abs
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger import errors
from ledger.models import Account, AdjustmentRequest, Entry
from ledger.services.posting import _lock, _lock_member_account, _post, _reason
from loyalty_site.errors import DomainError
from members.models import Member
from members.services import audit_record


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


def _posted_today(actor, at: datetime) -> int:
    """The absolute points ``actor`` posted without a second person on ``at``'s local day."""
    start = timezone.localtime(at, ZoneInfo(settings.TIME_ZONE)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    end = start + timedelta(days=1)  # wall-clock arithmetic: a DST day has 23 or 25 hours
    total = Entry.objects.filter(
        kind=Entry.Kind.ADJUST,
        actor=actor,
        created_at__gte=start,
        created_at__lt=end,
        adjustment_request__isnull=True,
    ).aggregate(total=Sum(Abs("amount")))["total"]
    return total or 0


def _needs_approval(actor, points: int, at: datetime) -> bool:
    if abs(points) > settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD:
        return True
    return _posted_today(actor, at) + abs(points) > settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT


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
    an AdjustmentRequest waits for a second staff user; so does one that takes the actor's
    adjustments of the day above ``LOYALTY_ADJUSTMENT_DAILY_LIMIT``. A debit never takes the
    balance below 0: one larger than the available points is refused at once, also when it would
    wait for approval (and checked again when it is approved).
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
        # See the module docstring: the user first, then the account.
        list(get_user_model().objects.select_for_update().filter(pk=actor.pk).values_list("pk"))
        account = _lock_member_account(member)
        if _needs_approval(actor, points, at):
            if points < 0 and account.available < -points:
                raise errors.InsufficientPoints()
            request = AdjustmentRequest.objects.create(
                account=account,
                points=points,
                reason=reason,
                requested_by=actor,
                requested_at=at,
            )
            _adjust_audit(member, actor, reason, points=points, adjustment_request_id=request.pk)
            return request
        entry = _adjust_post(
            account, points=points, reason=reason, actor=actor, at=at, reference=reference
        )
        _adjust_audit(member, actor, reason, points=points, entry_id=entry.pk)
        return entry


def _adjust_audit(member: Member, actor, reason: str, **details) -> None:
    # The member's audit trail lists every staff change to them, points included: the entry
    # (or the waiting request) holds the same who and why, but the trail is where staff look.
    audit_record(actor=actor, action="points_adjust", member=member, reason=reason, details=details)


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
        _decision_audit(
            locked, actor, "adjustment_approve", reason=locked.reason, entry_id=entry.pk
        )
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
        _decision_audit(locked, actor, "adjustment_reject", reason=locked.decision_reason)
    request.refresh_from_db()
    return locked


def _decision_audit(request: AdjustmentRequest, actor, action: str, *, reason: str, **details):
    """The approver's decision in the member's audit trail (the requester's is there already)."""
    member = Member.objects.get(pk=request.account.member_id)
    audit_record(
        actor=actor,
        action=action,
        member=member,
        reason=reason,
        details={"adjustment_request_id": request.pk, "points": request.points, **details},
    )
