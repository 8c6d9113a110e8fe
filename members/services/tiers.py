"""A member's tier: the one way it changes, and the record every change leaves."""

from datetime import datetime

from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import JSONObject
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
from members.periods import tier_change_dated
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
    # Not into a month finance has closed: refused or moved to now (members.periods).
    asked = at or timezone.now()
    at, moved = tier_change_dated(asked)
    if moved:
        note = f"{note.strip()} ({moved['note']}, dated {asked.isoformat()})".strip()
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


def tier_changes_record(
    *, histories: list[TierHistory], channel: str = "", public_ids: dict | None = None
) -> None:
    """The audit rows and ``tier.changed`` events of tier changes whose history is written.

    Bulk: the recalculation hands in every history row a chunk inserted, with the members'
    public ids its UPDATE returned (``public_ids``, member id to public id; read here when not
    given). Tier names come from the cached ladder, so this costs one or two statements however
    many members moved.
    """
    if not histories:
        return
    names = {tier.pk: tier.name for tier in tiers_cached()}
    if public_ids is None:
        public_ids = dict(
            Member.objects.filter(pk__in={h.member_id for h in histories}).values_list(
                "pk", "public_id"
            )
        )
    _audit_rows_insert(history_ids=[h.pk for h in histories])
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


# A database takes at most so many parameters in one statement.
AUDIT_BATCH = 5000


def _audit_rows_insert(*, history_ids: list[int]) -> None:
    """One ``member_tier_set`` audit row per history row, copied by the database
    (``INSERT ... SELECT``: a chunk of the nightly run moves thousands of members)."""
    columns = ("actor_id", "at", "action", "member_id", "reason", "details")
    for start in range(0, len(history_ids), AUDIT_BATCH):
        rows = (
            TierHistory.objects.filter(pk__in=history_ids[start : start + AUDIT_BATCH])
            .order_by("pk")
            .values(
                # Named apart from the history's fields; in the order of ``columns``.
                a_actor=F("actor_id"),
                a_at=F("at"),
                a_action=Value("member_tier_set"),
                a_member=F("member_id"),
                a_reason=F("note"),
                a_details=JSONObject(
                    from_tier_id=F("from_tier_id"), to_tier_id=F("to_tier_id"), reason=F("reason")
                ),
            )
        )
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {AuditEntry._meta.db_table} ({', '.join(columns)}) {sql}", params
            )
