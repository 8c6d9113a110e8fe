"""Segment writes: saving a segment (validated, audited), freezing its members into a snapshot;
the RFM preset segments."""

from datetime import datetime

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext

from campaigns import control, segments
from campaigns.models import Segment, SegmentSnapshot, SegmentSnapshotMember
from members.services import audit_record


@transaction.atomic
def segment_snapshot_take(
    *,
    definition: dict,
    segment: Segment | None = None,
    now: datetime | None = None,
    without_holdout: bool = False,
) -> SegmentSnapshot:
    """Freeze the members `definition` selects at `now` into a new snapshot.

    One INSERT ... SELECT over the compiled query, so a snapshot of a million members is one
    statement and no member list passes through Python. `without_holdout` leaves out the
    programme-wide holdout (a campaign's audience never holds it).
    """
    now = now or timezone.now()
    snapshot = SegmentSnapshot.objects.create(segment=segment, definition=definition, taken_at=now)
    members = segments.members(definition, now=now)
    if without_holdout:
        members = members.exclude(control.holdout_q())
    try:
        select, params = (
            members.order_by()
            .annotate(chosen_id=F("pk"))
            .values_list("chosen_id")
            .query.sql_with_params()
        )
    except EmptyResultSet:
        # A tree that can select nobody ({"any": []}) compiles to no SQL at all: an empty
        # snapshot, not an error (a campaign on such a segment starts with no audience).
        return snapshot
    table = connection.ops.quote_name(SegmentSnapshotMember._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (snapshot_id, member_id) "  # noqa: S608 - names are ours
            f"SELECT %s, chosen.chosen_id FROM ({select}) chosen",
            [snapshot.pk, *params],
        )
        snapshot.size = cursor.rowcount
    snapshot.save(update_fields=["size"])
    return snapshot


@transaction.atomic
def segment_presets_ensure(*, actor=None) -> int:
    """Create the eight RFM preset segments that are missing; returns how many were created.

    Idempotent: a preset is found by its name, and an existing one is left as marketing keeps
    it (its description edited, say). The names are in the programme's default language.
    """
    from campaigns.segments import rfm

    created = 0
    for key, label in rfm.PRESET_LABELS.items():
        _segment, made = Segment.objects.get_or_create(
            name=gettext("RFM: %(preset)s") % {"preset": label},
            defaults={
                "definition": {"condition": "rfm", "segment": key},
                "description": gettext(
                    "Recency and frequency quintiles over the last %(days)s days (RFM preset)."
                )
                % {"days": rfm.window_days()},
                "created_by": actor,
            },
        )
        created += made
    return created


@transaction.atomic
def segment_save(
    *,
    segment: Segment | None = None,
    name: str,
    description: str = "",
    definition: dict,
    actor,
    reason: str = "",
) -> Segment:
    """Create a segment (`segment` None) or change one: validated, then recorded in the audit log
    with the fields that changed and the reason.

    Raises ValidationError: the definition's problem (code ``invalid_segment``, from
    `campaigns.segments.validate`, which also refuses a segment that contains itself) or the
    model's (a name taken). A saved segment is locked while it changes, so two marketers saving
    at once save one after the other.
    """
    if segment is not None:
        segment = Segment.objects.select_for_update().get(pk=segment.pk)
    else:
        segment = Segment(created_by=actor)
    before = {
        "name": segment.name,
        "description": segment.description,
        "definition": segment.definition if segment.pk else None,
    }
    segment.name, segment.description, segment.definition = name, description, definition
    # full_clean runs Segment.clean, i.e. segments.validate with the segment's id (cycles).
    segment.full_clean(exclude=["created_by"])
    changed = sorted(field for field, value in before.items() if getattr(segment, field) != value)
    created = segment.pk is None
    if not created and not changed:
        return segment
    segment.save()
    audit_record(
        actor=actor,
        action="segment_create" if created else "segment_update",
        reason=reason,
        details={"segment_id": segment.pk, "fields": changed},
    )
    return segment


@transaction.atomic
def rfm_scores_refresh(*, now: datetime | None = None) -> int:
    """Score every member on RFM as of `now` (campaigns.segments.rfm) and store the scores for
    the day's counts; returns how many members were scored. Nightly (a scheduled task), and
    safe to run twice or at the same time: the scoring row is locked first, so two refreshes
    replace the scores one after the other, each whole, and readers see the old or the new."""
    from campaigns.models import RfmScore, RfmScoring
    from campaigns.segments import rfm

    now = now or timezone.now()
    scoring = RfmScoring.objects.select_for_update().order_by("pk").first()
    if scoring is None:
        scoring = RfmScoring.objects.create(as_of=now, day=timezone.localdate(now))
        scoring = RfmScoring.objects.select_for_update().get(pk=scoring.pk)
    RfmScore.objects.all().delete()
    sql, sql_params = rfm.scores_sql(now)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {RfmScore._meta.db_table} (member_id, cell) {sql}",  # noqa: S608 - ours
            sql_params,
        )
        scored = cursor.rowcount
    RfmScoring.objects.exclude(pk=scoring.pk).delete()
    RfmScoring.objects.filter(pk=scoring.pk).update(
        as_of=now, day=timezone.localdate(now), members=scored
    )
    return scored
