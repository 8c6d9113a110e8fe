"""What the segment builder asks while a definition is edited: how many, who, and how many can
be reached per channel; and which segments hold one member (the earn path).

Each function takes a saved `Segment` or an unsaved definition, validates it, and answers with
one query (plus one per nesting level of segment references, see the package docstring).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connections, router
from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet

from campaigns import control
from campaigns.segments import compile_q, context_for, members, uses
from members import selectors as member_selectors
from members.database import big_read
from members.models import Consent, Member

# Any fixed salt: the sample is spread over the whole segment by the hash, and the same on every
# call, so the builder's preview does not jump while the definition stays the same.
SAMPLE_SALT = 1_103_515_245


def _definition(segment) -> dict:
    return segment.definition if hasattr(segment, "definition") else segment


def _counting():
    """The count's statement as a big read (``members.database.big_read``): no JIT, which
    costs a count over a million members more than it saves, and planned for the definition's
    values every time, as the editor counts the same tree again and again."""
    return big_read(connections[router.db_for_read(Member)])


def segment_count(definition, *, now: datetime | None = None) -> int:
    queryset = members(_definition(definition), now=now)
    with _counting():
        return queryset.count()


@dataclass(frozen=True)
class RfmBasis:
    """What a count's RFM conditions read: the nightly scores made at `scored_at`, or (None)
    the purchases, ranked in the count itself (see rfm.fresh_scoring)."""

    scored_at: datetime | None


def segment_rfm_basis(definition, *, now: datetime | None = None) -> RfmBasis | None:
    """For a tree with an RFM condition (also through a referenced segment), what its count
    reads; None for a tree without one. No query for such a tree without references."""
    definition = _definition(definition)
    context = context_for(definition, now=now)
    if not uses("rfm", definition, context.definitions):
        return None
    scoring = context.rfm_scoring
    return RfmBasis(scored_at=scoring.as_of if scoring is not None else None)


def segment_sample(definition, *, size: int = 20, now: datetime | None = None) -> QuerySet:
    """Up to `size` members, a stable spread of the segment: ordered by a hash of their id
    (the control groups' bucket), never `ORDER BY random()`: the database keeps only the
    top `size` rows while it scans, and the same definition shows the same members."""
    return (
        members(_definition(definition), now=now)
        .select_related("tier")
        .annotate(sample_bucket=control.bucket_expression(SAMPLE_SALT))
        .order_by("sample_bucket", "pk")[:size]
    )


def _consenting(purpose: str) -> Q:
    return Q(pk__in=member_selectors.members_consenting(purpose=purpose).values("pk"))


def segment_reachable(definition, *, now: datetime | None = None) -> dict[str, int]:
    """Members of the segment a message could reach, per channel, with the total: one query.

    e-mail: marketing e-mail consent and an e-mail address; SMS: SMS consent and a phone
    number; push: push consent alone (members carry no push token here: the app holds it).
    """
    queryset = members(_definition(definition), now=now)
    with _counting():
        return queryset.aggregate(
            total=Count("pk"),
            email=Count("pk", filter=_consenting(Consent.Purpose.MARKETING_EMAIL) & ~Q(email="")),
            sms=Count("pk", filter=_consenting(Consent.Purpose.SMS) & ~Q(phone="")),
            push=Count("pk", filter=_consenting(Consent.Purpose.PUSH)),
        )


def segments_holding(
    *, member_id: int, definitions: dict[int, dict], now: datetime | None = None
) -> frozenset[int]:
    """Which of the segments (id → definition) hold the member, in one query for all of them.

    The member's status is not asked: this serves a member who is buying right now.
    """
    if not definitions:
        return frozenset()
    # One context for all of them: the references and the RFM scores are read once.
    context = context_for({"all": list(definitions.values())}, now=now)
    flags = {
        f"in_segment_{segment_id}": ExpressionWrapper(
            compile_q(definition, context=context), output_field=BooleanField()
        )
        for segment_id, definition in definitions.items()
    }
    row = Member.objects.filter(pk=member_id).annotate(**flags).values(*flags).first()
    if row is None:
        return frozenset()
    return frozenset(segment_id for segment_id in definitions if row[f"in_segment_{segment_id}"])
