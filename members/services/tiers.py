"""A member's tier: the one way it changes, and the record every change leaves."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from members.errors import (
    ReasonRequired,
)
from members.events import Event, events_emit
from members.models import (
    AuditEntry,
    Member,
    Tier,
    TierHistory,
)
from members.selectors import (
    tiers_cached,
)


@transaction.atomic
def member_tier_set(
    *,
    member: Member,
    tier: Tier | None,
    reason: str = TierHistory.Reason.STAFF,
    actor=None,
    note: str = "",
    qualifying_points: int | None = None,
    at: datetime | None = None,
    channel: str = "",
) -> TierHistory | None:
    """Move a member to ``tier`` and record why; None when the member is there already.

    The one way a member's tier changes one at a time (staff, an earn, an event): it writes the
    tier history, the audit row (``actor`` None: the programme itself) and the ``tier.changed``
    event. The nightly recalculation moves members in bulk and writes the same three with
    ``tier_changes_record``.
    """
    if reason == TierHistory.Reason.STAFF and actor is not None and not note.strip():
        raise ReasonRequired(fields={"note": ReasonRequired.default_detail})
    locked = Member.objects.select_for_update().get(pk=member.pk)
    if locked.tier_id == (tier.pk if tier else None):
        if locked.tier_below_since is not None and reason != TierHistory.Reason.DOWNGRADE:
            locked.tier_below_since = None
            locked.save(update_fields=["tier_below_since"])
        return None
    at = at or timezone.now()
    history = TierHistory.objects.create(
        member=locked,
        from_tier_id=locked.tier_id,
        to_tier=tier,
        reason=reason,
        note=note,
        qualifying_points=qualifying_points,
        at=at,
        actor=actor,
    )
    locked.tier = tier
    locked.tier_since = at
    locked.tier_below_since = None
    locked.save(update_fields=["tier", "tier_since", "tier_below_since", "updated_at"])
    member.tier, member.tier_since, member.tier_below_since = tier, at, None
    tier_changes_record(histories=[history], channel=channel)
    return history


def tier_changes_record(*, histories: list[TierHistory], channel: str = "") -> None:
    """The audit rows and ``tier.changed`` events of tier changes whose history is written.

    Bulk: the nightly recalculation hands in every history row it inserted. Tier names come
    from the cached ladder, so this costs two statements however many members moved.
    """
    if not histories:
        return
    names = {tier.pk: tier.name for tier in tiers_cached()}
    public_ids = dict(
        Member.objects.filter(pk__in={h.member_id for h in histories}).values_list(
            "pk", "public_id"
        )
    )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=h.actor,
            action="member_tier_set",
            member_id=h.member_id,
            reason=h.note,
            at=h.at,
            details={
                "from_tier_id": h.from_tier_id,
                "to_tier_id": h.to_tier_id,
                "reason": h.reason,
            },
        )
        for h in histories
    )
    events_emit(
        events=[
            Event(
                type="tier.changed",
                data={
                    "member": public_ids[h.member_id],
                    "from": names.get(h.from_tier_id),
                    "to": names.get(h.to_tier_id),
                    "reason": h.reason,
                },
                channel=channel,
            )
            for h in histories
        ]
    )
