"""Net Promoter Score: reads for the dashboard and the campaign results.

An answer is the 0–10 score on an accepted event (approved or credited; pending and rejected
ones do not count) of a kind that collects NPS. Promoters answer 9–10, passives 7–8, detractors
0–6; NPS = % promoters − % detractors, from −100 to +100. Every answer counts, so a member who
answers twice in a month weighs twice, as in the survey tools marketing compares us with.
Months are calendar months in the programme's time zone (``TIME_ZONE``); the tier is the
member's current tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Q, QuerySet
from django.db.models.functions import TruncMonth

from campaigns.models import EngagementEvent

PROMOTER_MIN = 9
DETRACTOR_MAX = 6

ACCEPTED = (EngagementEvent.Status.APPROVED, EngagementEvent.Status.CREDITED)


def nps(*, promoters: int, detractors: int, responses: int) -> float | None:
    """% promoters − % detractors; None without any answer."""
    if responses <= 0:
        return None
    return 100.0 * (promoters - detractors) / responses


@dataclass(frozen=True)
class NpsRow:
    month: date
    # None when the summary is not by tier, and for members without a tier when it is.
    tier_id: int | None
    tier: str | None
    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def nps(self) -> float | None:
        return nps(promoters=self.promoters, detractors=self.detractors, responses=self.responses)


def answers(*, start: datetime, end: datetime, members: QuerySet | None = None) -> QuerySet:
    """The accepted NPS answers given in [start, end), optionally of some members only."""
    found = EngagementEvent.objects.filter(
        kind__collects_nps=True,
        score__isnull=False,
        status__in=ACCEPTED,
        created_at__gte=start,
        created_at__lt=end,
    )
    if members is not None:
        found = found.filter(member__in=members)
    return found


def nps_summary(
    *,
    start: datetime,
    end: datetime,
    by_tier: bool = False,
    members: QuerySet | None = None,
) -> list[NpsRow]:
    """NPS per month (and per tier) of the answers given in [start, end), oldest month first.

    One SQL query: the answers grouped by month (and tier) with conditional counts. ``members``
    (a queryset of members, e.g. a campaign's treated group) limits it to their answers. Months
    and tiers without an answer have no row.
    """
    month = TruncMonth("created_at", tzinfo=ZoneInfo(settings.TIME_ZONE))
    group = ["month", "member__tier_id", "member__tier__name"] if by_tier else ["month"]
    rows = (
        answers(start=start, end=end, members=members)
        .annotate(month=month)
        .values(*group)
        .annotate(
            responses=Count("id"),
            promoters=Count("id", filter=Q(score__gte=PROMOTER_MIN)),
            detractors=Count("id", filter=Q(score__lte=DETRACTOR_MAX)),
        )
        .order_by("month", *([F("member__tier__rank").asc(nulls_last=True)] if by_tier else []))
    )
    return [
        NpsRow(
            month=row["month"].date() if isinstance(row["month"], datetime) else row["month"],
            tier_id=row.get("member__tier_id"),
            tier=row.get("member__tier__name"),
            responses=row["responses"],
            promoters=row["promoters"],
            passives=row["responses"] - row["promoters"] - row["detractors"],
            detractors=row["detractors"],
        )
        for row in rows
    ]
