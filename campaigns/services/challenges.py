"""Challenges and badges: progress per member, completion claimed exactly once."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

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
from members.models import Member


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
