"""Segments: saved filters over members, stored as data and compiled to one query.

The definition is a JSON tree (see `campaigns.segments`): groups `{"all": [...]}`,
`{"any": [...]}`, `{"not": node}` and conditions `{"condition": name, ...}`. It is validated on
save and compiled to a single SQL query over members, never evaluated member by member.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


def _everyone() -> dict:
    return {"all": []}


class Segment(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)
    description = models.TextField(_("description"), blank=True)
    definition = models.JSONField(
        _("definition"),
        default=_everyone,
        help_text=_('Groups "all", "any", "not" of conditions. An empty "all" is every member.'),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from campaigns import segments

        segments.validate(self.definition, segment_id=self.pk)


class SegmentSnapshot(models.Model):
    """A segment's members frozen at one moment (for a send or a campaign's audience).

    The definition is copied, so a later edit of the segment does not change what the snapshot
    meant. Its members are written by one INSERT ... SELECT (see `segment_snapshot_take`), so a
    snapshot of any size is one statement.
    """

    segment = models.ForeignKey(
        Segment,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="snapshots",
        verbose_name=_("segment"),
    )
    definition = models.JSONField(_("definition"))
    taken_at = models.DateTimeField(_("taken at"), default=timezone.now)
    size = models.PositiveIntegerField(_("members"), default=0)

    class Meta:
        verbose_name = _("segment snapshot")
        verbose_name_plural = _("segment snapshots")
        ordering = ["-taken_at", "-id"]

    def __str__(self) -> str:
        return f"{self.segment or '-'} @ {timezone.localtime(self.taken_at):%Y-%m-%d %H:%M}"


class SegmentSnapshotMember(models.Model):
    # No index of its own: snapshot_member_once starts with it.
    snapshot = models.ForeignKey(
        SegmentSnapshot,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("snapshot"),
        db_index=False,
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )

    class Meta:
        verbose_name = _("snapshot member")
        verbose_name_plural = _("snapshot members")
        constraints = [
            models.UniqueConstraint(
                fields=["snapshot", "member"],
                name="snapshot_member_once",
                violation_error_message=_("A member is in a snapshot once."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.snapshot_id}: {self.member_id}"


class RfmScoring(models.Model):
    """When the RFM scores (`RfmScore`) were last computed, for the local day `day`.

    One row: the nightly refresh (campaigns.services.rfm_scores_refresh) replaces it with the
    scores. A count on that day or the next reads the scores; later (the nightly job stopped)
    the RFM condition ranks the purchases in its own query (campaigns.segments.rfm.fresh_scoring).
    """

    as_of = models.DateTimeField(_("as of"))
    day = models.DateField(_("day"))
    members = models.PositiveIntegerField(_("members scored"), default=0)

    class Meta:
        verbose_name = _("RFM scoring")
        verbose_name_plural = _("RFM scorings")

    def __str__(self) -> str:
        return f"{self.day}: {self.members}"


class RfmScore(models.Model):
    """A member's RFM cell (R * 10 + F) as of the last RfmScoring: what the RFM presets read
    instead of ranking a year of purchases for every count."""

    member = models.OneToOneField(
        "members.Member",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        verbose_name=_("member"),
    )
    cell = models.PositiveSmallIntegerField(_("cell"))

    class Meta:
        verbose_name = _("RFM score")
        verbose_name_plural = _("RFM scores")
        indexes = [models.Index(fields=["cell", "member"], name="rfmscore_cell")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.cell}"
