"""Engagement events (reviews, surveys, shares, birthdays) and the points they earn."""

from __future__ import annotations

import calendar
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns import selectors
from campaigns.errors import (
    DuplicateEvent,
    EngagementLimitReached,
    NotPending,
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
from members.models import Member


def _kind(kind: EngagementKind | str) -> EngagementKind:
    if isinstance(kind, EngagementKind):
        return kind
    found = EngagementKind.objects.filter(code=kind, active=True).first()
    if found is None:
        raise NotFound(code="unknown_event_kind")
    return found


# Engagement kinds whose points have their own wording in ledger.reasons.
_OWN_REASON = {"birthday", "referral"}


def _event_reason(kind: EngagementKind) -> dict:
    if kind.code in _OWN_REASON:
        return {"reason_code": kind.code}
    return {"reason_code": "engagement", "reason_params": {"kind": kind.code, "name": kind.name}}


def _credit_event(event: EngagementEvent) -> None:
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
) -> EngagementEvent:
    kind = _kind(kind)
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
    member_lock(event.member)
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
    if (on.month, on.day) == (2, 28) and not calendar.isleap(on.year):
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
