"""Challenges and badges: progress per member, completion claimed exactly once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from campaigns import selectors
from campaigns.models import (
    Badge,
    Challenge,
    ChallengeProgress,
    EngagementEvent,
    MemberBadge,
)
from ledger import services as ledger_services
from ledger.models import Purchase
from loyalty_site.errors import DomainError
from members import config_cache
from members.errors import ReasonRequired
from members.models import Member
from members.services import audit_record


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
                reason_code="challenge_completed",
                reason_params={"name": challenge.name},
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


CHALLENGE_FIELDS = (
    "name",
    "description",
    "active",
    "goal",
    "target",
    "category",
    "event_kind",
    "starts_at",
    "ends_at",
    "window_days",
    "reward_points",
    "badge",
)


def challenge_problems(challenge: Challenge) -> dict[str, str]:
    """What makes the challenge's goal or reward unusable, by field (empty: none).

    The goal is a kind with its own parameters: a category belongs to a spend goal only, an
    engagement kind to an event-count goal only (none there: any kind counts), and a count is
    a whole number. A challenge nobody gains anything from is refused too.
    """
    problems: dict[str, str] = {}
    target = challenge.target
    if target is None or target <= 0:
        problems["target"] = _("The target must be more than 0.")
    elif challenge.goal != Challenge.Goal.SPEND and target != target.to_integral_value():
        problems["target"] = _("A number of purchases or events is a whole number.")
    if challenge.category and challenge.goal != Challenge.Goal.SPEND:
        problems["category"] = _("Only a spend goal has a category.")
    if challenge.event_kind_id and challenge.goal != Challenge.Goal.EVENT_COUNT:
        problems["event_kind"] = _("Only a goal of engagement events has an engagement kind.")
    if challenge.starts_at and challenge.ends_at and challenge.ends_at <= challenge.starts_at:
        problems["ends_at"] = _("The end must be after the start.")
    if not challenge.reward_points and challenge.badge_id is None:
        problems["reward_points"] = _("Give reward points, a badge or both.")
    return problems


def _forget_challenges_on_commit() -> None:
    # Purchases read the challenges from the per-process copy (config_cache): this process
    # sees the change at once, the others within LOYALTY_CONFIG_CACHE_SECONDS.
    transaction.on_commit(lambda: config_cache.forget("challenges"))


@transaction.atomic
def challenge_save(*, challenge: Challenge, actor, reason: str) -> Challenge:
    """Create or change a challenge after checking its goal; audited. Progress members made
    stays; a changed target counts for the next step each member takes."""
    problems = challenge_problems(challenge)
    if not (reason or "").strip():
        problems["reason"] = str(ReasonRequired.default_detail)
    if problems:
        raise DomainError(_("Correct the marked fields."), code="invalid_field", fields=problems)
    if challenge.pk is None:
        challenge.save()
        action, changed = "challenge_create", ["created"]
    else:
        before = Challenge.objects.get(pk=challenge.pk)
        changed = [
            f
            for f in CHALLENGE_FIELDS
            if getattr(before, Challenge._meta.get_field(f).attname)
            != getattr(challenge, Challenge._meta.get_field(f).attname)
        ]
        challenge.save(update_fields=list(CHALLENGE_FIELDS))
        action = "challenge_change"
    _forget_challenges_on_commit()
    audit_record(
        actor=actor,
        action=action,
        reason=reason.strip(),
        details={"challenge_id": challenge.pk, "changed": changed},
    )
    return challenge


@transaction.atomic
def badge_save(*, badge: Badge, actor, reason: str) -> Badge:
    """Create or change a badge (its code, name and description); audited."""
    if not (reason or "").strip():
        raise ReasonRequired(fields={"reason": ReasonRequired.default_detail})
    creating = badge.pk is None
    badge.save()
    _forget_challenges_on_commit()  # the cached challenges carry their badge
    audit_record(
        actor=actor,
        action="badge_create" if creating else "badge_change",
        reason=reason.strip(),
        details={"badge_id": badge.pk},
    )
    return badge
