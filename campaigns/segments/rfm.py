"""RFM presets: members scored 1–5 on recency and frequency by quintile, then named.

Over the window of settings.LOYALTY_RFM_WINDOW_DAYS (default 365) days up to today, every
active member with at least one counted purchase in it (see `history`) gets:

* R, the quintile of their latest purchase time (NTILE(5) ordered oldest first: 5 = the most
  recent fifth), and
* F, the quintile of their number of purchases (5 = the most frequent fifth);

ties are broken by member id, so the split is the same on every run. Members without a
purchase in the window are not scored and are in no preset. Both scores are window functions
computed in the same SQL statement as the rest of the segment (PostgreSQL; SQLite has NTILE
since 3.25 and Django needs 3.31).

The named presets follow the widely used RF grid of RFM segmentation (the "RFM segments" map
popularised by Putler's RFM guide and the Kaggle "RFM Analysis" notebooks, regex form
``{"[1-2][1-2]": hibernating, "[1-2][3-4]": at risk, "[1-2]5": can't lose, "3[1-2]": about to
sleep, "33": need attention, "[3-4][4-5]": loyal, "41": promising, "51": new, "[4-5][2-3]":
potential loyalists, "5[4-5]": champions}``), folded to the eight presets the programme
names: the grid's lowest corner ([1-2][1-2]) is *lost*, its "about to sleep" and "need
attention" cells (3[1-3]) are *hibernating*, and "promising" (41) joins *new*. Every (R, F)
pair belongs to exactly one preset.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, F, Max, Q
from django.db.models.expressions import RawSQL
from django.utils.translation import gettext_lazy as _

from campaigns.segments import Condition, invalid, params, register
from ledger.models import Purchase
from members.models import Member


def _cells(recency: str, frequency: str) -> set[int]:
    return {int(r) * 10 + int(f) for r in recency for f in frequency}


# (R, F) as R * 10 + F.
PRESETS: dict[str, set[int]] = {
    "champions": _cells("5", "45"),
    "loyal": _cells("34", "45"),
    "potential": _cells("45", "23"),
    "new": _cells("45", "1"),
    "at_risk": _cells("12", "34"),
    "cant_lose": _cells("12", "5"),
    "hibernating": _cells("3", "123"),
    "lost": _cells("12", "12"),
}

PRESET_LABELS = {
    "champions": _("Champions"),
    "loyal": _("Loyal"),
    "potential": _("Potential loyalists"),
    "new": _("New customers"),
    "at_risk": _("At risk"),
    "cant_lose": _("Can't lose them"),
    "hibernating": _("Hibernating"),
    "lost": _("Lost"),
}


def window_days() -> int:
    return settings.LOYALTY_RFM_WINDOW_DAYS


def scored_sql(now) -> tuple[str, list]:
    """SQL selecting (member, r, f) for every scored member, and its parameters.

    The aggregates per member come from the ORM; the window functions run over them in an
    outer SELECT, since a window over an aggregate cannot be filtered in the same level (and
    Django puts it in GROUP BY when asked to).
    """
    window = {"days": window_days()}
    per_member = (
        Purchase.objects.filter(
            params.window_q("occurred_at", window, now), member__status=Member.Status.ACTIVE
        )
        .exclude(status=Purchase.Status.REJECTED)
        .order_by()
        .values(scored_member=F("member"))
        .annotate(last_at=Max("occurred_at"), purchases=Count("pk"))
    )
    inner, inner_params = per_member.query.sql_with_params()
    sql = (
        "SELECT agg.scored_member AS member_id,"
        " NTILE(5) OVER (ORDER BY agg.last_at, agg.scored_member) AS r,"
        " NTILE(5) OVER (ORDER BY agg.purchases, agg.scored_member) AS f"
        f" FROM ({inner}) AS agg"
    )
    return sql, list(inner_params)


def _check_rfm(node: dict) -> None:
    if node.get("segment") not in PRESETS:
        raise invalid(
            _("Condition “rfm” needs “segment”: one of %(presets)s."),
            presets=", ".join(PRESETS),
        )


def fresh_scoring(now):
    """The nightly scores (RfmScoring) that RFM conditions read as of `now`, None if none is
    fresh: those of today's or yesterday's local day.

    The refresh runs just after midnight (loyalty_site.schedules), so until it has finished
    yesterday's are the freshest there are: a count then reads them rather than ranking a
    year of purchases (seconds at a million members) in the editor. Scores older than that mean
    the nightly job is not running, and a count ranks the purchases itself: slow, but not
    silently stale. The page that shows a count says which (`segment_rfm_basis`).
    """
    from campaigns.models import RfmScoring

    today = params.today(now)
    return (
        RfmScoring.objects.filter(day__gte=today - timedelta(days=1), day__lte=today)
        .order_by("-day", "-as_of")
        .first()
    )


def _compile_rfm(node: dict, context) -> Q:
    """The members in the preset's cells: read from the night's scores (RfmScore) when the
    context holds fresh ones (`fresh_scoring`, read once per tree by `context_for`), else ranked
    here from the purchases. Only the branch chosen is in the statement: a plan with the
    ranking in it, even one PostgreSQL would skip, is planned (and JIT-compiled) for its cost.
    """
    from campaigns.models import RfmScore

    cells = sorted(PRESETS[node["segment"]])
    if context.rfm_scoring is not None:
        return Q(pk__in=RfmScore.objects.filter(cell__in=cells).values("member"))
    sql, sql_params = scored_sql(context.now)
    marks = ", ".join(["%s"] * len(cells))
    ranked = RawSQL(
        f"SELECT scored.member_id FROM ({sql}) AS scored"  # noqa: S608 - no user text in it
        f" WHERE scored.r * 10 + scored.f IN ({marks})",
        (*sql_params, *cells),
    )
    return Q(pk__in=ranked)


def scores_sql(now) -> tuple[str, list]:
    """SQL selecting (member, cell) for every member scored as of `now` (the refresh's)."""
    sql, sql_params = scored_sql(now)
    return f"SELECT scored.member_id, scored.r * 10 + scored.f FROM ({sql}) AS scored", sql_params


register(
    Condition(
        name="rfm",
        label=_("RFM preset"),
        check=_check_rfm,
        compile=_compile_rfm,
    )
)
