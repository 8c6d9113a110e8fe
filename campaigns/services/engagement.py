"""Engagement events (reviews, surveys, shares, birthdays) and the points they earn.

A kind that collects NPS (``EngagementKind.collects_nps``, the survey) carries a 0–10 score on
each event. The member's latest score and its time are kept on ``Member.nps_score`` /
``nps_at`` in the transaction that accepts the event: when it is recorded, or, for a kind that
waits for a moderator, when it is approved; a rejected answer never counts. "Latest" is by the
event's own time, so a late-arriving older answer does not replace a newer one.
"""

from __future__ import annotations

from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import selectors
from campaigns.errors import (
    DuplicateEvent,
    EngagementLimitReached,
    InvalidScore,
    NotPending,
    ScoreNotCollected,
    ScoreRequired,
)
from campaigns.models import (
    EngagementEvent,
    EngagementKind,
)
from campaigns.services.challenges import challenges_advance
from campaigns.services.locks import member_lock
from campaigns.tiers import tier_upgrade_on_earn
from ledger import services as ledger_services
from loyalty_site.errors import NotFound
from members.errors import ReasonRequired
from members.models import Member
from members.services import audit_record


def _kind(kind: EngagementKind | str) -> EngagementKind:
    if isinstance(kind, EngagementKind):
        return kind
    found = EngagementKind.objects.filter(code=kind, active=True).first()
    if found is None:
        raise NotFound(code="unknown_event_kind")
    return found


def _score_refusal(kind: EngagementKind, score) -> Exception | None:
    if not kind.collects_nps:
        if score is None:
            return None
        return ScoreNotCollected(fields={"score": ScoreNotCollected.default_detail})
    if score is None:
        return ScoreRequired(fields={"score": ScoreRequired.default_detail})
    # bool is an int in Python: True must not pass as a score of 1.
    if isinstance(score, bool) or not isinstance(score, int) or not 0 <= score <= 10:
        return InvalidScore(fields={"score": InvalidScore.default_detail})
    return None


def _nps_keep(event: EngagementEvent) -> None:
    """The event's score becomes the member's latest unless a newer answer is already kept.

    One conditional UPDATE, so that it holds without relying on the caller's lock: an answer
    given earlier than the kept one (a late upload, a moderated answer approved after a newer
    one) changes nothing. Equal times: the one accepted last wins.
    """
    if event.score is None:
        return
    kept = (
        Member.objects.filter(pk=event.member_id)
        .filter(Q(nps_at__isnull=True) | Q(nps_at__lte=event.created_at))
        .update(nps_score=event.score, nps_at=event.created_at, updated_at=timezone.now())
    )
    if kept:
        event.member.nps_score, event.member.nps_at = event.score, event.created_at


# Engagement kinds whose points have their own wording in ledger.reasons.
_OWN_REASON = {"birthday", "referral"}


def _event_reason(kind: EngagementKind) -> dict:
    if kind.code in _OWN_REASON:
        return {"reason_code": kind.code}
    return {"reason_code": "engagement", "reason_params": {"kind": kind.code, "name": kind.name}}


def _credit_event(event: EngagementEvent) -> None:
    _nps_keep(event)
    if event.points > 0:
        ledger_services.points_earn(
            member=event.member,
            points=event.points,
            channel=event.channel,
            reference=f"event:{event.pk}",
            **_event_reason(event.kind),
            explanation=[{"rule": event.kind.name, "rule_id": None, "points": event.points}],
        )
        tier_upgrade_on_earn(member=event.member, channel=event.channel)
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
    score: int | None = None,
) -> EngagementEvent:
    """Record an engagement event and credit its points (now, or when it is approved).

    ``score`` is the NPS answer (0–10): required for a kind that collects NPS, refused for
    any other.
    """
    kind = _kind(kind)
    refusal = _score_refusal(kind, score)
    if refusal is not None:
        raise refusal
    member = member_lock(member)
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
                score=score,
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
def event_approve(*, event: EngagementEvent, actor, reason: str = "") -> EngagementEvent:
    member_lock(event.member)
    claimed = EngagementEvent.objects.filter(
        pk=event.pk, status=EngagementEvent.Status.PENDING
    ).update(status=EngagementEvent.Status.APPROVED, decided_by=actor, decided_at=timezone.now())
    if not claimed:
        raise NotPending()
    event = EngagementEvent.objects.select_related("member", "kind").get(pk=event.pk)
    _event_audit(event, "event_approve", actor, reason)
    _credit_event(event)
    return event


@transaction.atomic
def event_reject(*, event: EngagementEvent, actor, reason: str = "") -> EngagementEvent:
    claimed = EngagementEvent.objects.filter(
        pk=event.pk, status=EngagementEvent.Status.PENDING
    ).update(status=EngagementEvent.Status.REJECTED, decided_by=actor, decided_at=timezone.now())
    if not claimed:
        raise NotPending()
    event = EngagementEvent.objects.select_related("member", "kind").get(pk=event.pk)
    _event_audit(event, "event_reject", actor, reason)
    return event


def _event_audit(event: EngagementEvent, action: str, actor, reason: str) -> None:
    # A moderator's decision is a staff change: who, when and why go to the audit log, in the
    # transaction that decides (the event itself keeps only who and when).
    audit_record(
        actor=actor,
        action=action,
        member=event.member,
        reason=(reason or "").strip(),
        details={"event_id": event.pk, "kind": event.kind.code, "points": event.points},
    )


# --- Birthdays ---------------------------------------------------------------------------------


def birthdays_reward(*, on: date | None = None, member_ids: list[int] | None = None) -> int:
    """Record the "birthday" engagement event for members whose birthday is today.

    The reference carries the year, so the unique (member, kind, reference) constraint makes a
    second run on the same day (or a concurrent one) reward nobody twice. One short transaction
    per member: a slow night never holds many locks. ``member_ids`` limits the run to those
    members (a chunk of the job, listed by ``campaigns.selectors.birthdays_due``).
    """
    kind = EngagementKind.objects.filter(code="birthday", active=True).first()
    if kind is None:
        return 0
    on = on or timezone.localdate()
    members = selectors.birthday_members(on=on).only("pk")
    if member_ids is not None:
        members = members.filter(pk__in=member_ids)
    rewarded = 0
    for member in members.order_by("pk").iterator(chunk_size=1000):
        try:
            event_record(member=member, kind=kind, reference=selectors.birthday_reference(on))
        except (DuplicateEvent, EngagementLimitReached):
            continue
        rewarded += 1
    return rewarded


# What marketing may change on an engagement kind. Not its code: channels send events by it
# (POST events/), and `birthday` and `referral` are looked up by it.
ENGAGEMENT_KIND_FIELDS = (
    "name",
    "points",
    "limit_count",
    "limit_period",
    "requires_approval",
    "collects_nps",
    "active",
)


@transaction.atomic
def engagement_kind_save(*, kind: EngagementKind, actor, reason: str) -> EngagementKind:
    """Create or change an engagement kind; audited with who, why and which fields changed.

    A change applies to events recorded from now on; events already recorded keep their points.
    """
    if not (reason or "").strip():
        raise ReasonRequired(fields={"reason": ReasonRequired.default_detail})
    if kind.pk is None:
        kind.save()
        action, changed = "engagement_kind_create", ["created"]
    else:
        before = EngagementKind.objects.get(pk=kind.pk)
        changed = [f for f in ENGAGEMENT_KIND_FIELDS if getattr(before, f) != getattr(kind, f)]
        kind.save(update_fields=list(ENGAGEMENT_KIND_FIELDS))
        action = "engagement_kind_change"
    audit_record(
        actor=actor,
        action=action,
        reason=reason.strip(),
        details={"engagement_kind_id": kind.pk, "code": kind.code, "changed": changed},
    )
    return kind
