"""Benchmark: segment counts, as the segment editor shows them live; goal: p95 at most 1 s.

    BENCH_DATA_URL=postgres://…/loyalty_benchdata .venv/bin/python bench/segments_bench.py

A typical segment (tier + recency + a category bought) and the RFM "champions" preset, counted
by ``campaigns.segments.segment_count`` (the editor's live size) repeatedly. References on the
same connection: for the typical segment a hand-written count with EXISTS; for the preset the
ranking SQL itself (``rfm.scored_sql``, window functions over a year of purchases) counted
directly, and once scored, a count of the stored scores. The preset is counted twice: before
the nightly scores exist (ranked in the count) and after ``rfm_scores_refresh`` (read from the
scores; rolled back afterwards).
"""

import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import figures  # noqa: E402

figures.django_setup()

from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from campaigns.models import RfmScoring  # noqa: E402
from campaigns.segments import rfm, segment_count  # noqa: E402
from campaigns.services.segments import rfm_scores_refresh  # noqa: E402

REPEAT = int(os.environ.get("BENCH_SEGMENT_REPEAT", "10"))
# From this many members on, the live RFM ranking (the editor's fallback when there are no
# fresh nightly scores) is counted LIVE_REPEAT_LARGE times without a warm-up, to keep `make
# bench` within its 30 minutes.
LARGE = 500_000
LIVE_REPEAT_LARGE = int(os.environ.get("BENCH_SEGMENT_LIVE_REPEAT", "2"))
TYPICAL = {
    "all": [
        {"condition": "tier", "in": ["Silver", "Gold", "Platinum"]},
        {"condition": "last_purchase", "window": {"days": 90}},
        {"condition": "bought", "categories": ["coffee"], "window": {"days": 90}},
    ]
}
TYPICAL_SQL = """
    SELECT count(*) FROM members_member m JOIN members_tier t ON t.id = m.tier_id
    WHERE m.status = 'active' AND t.name IN ('Silver', 'Gold', 'Platinum')
      AND EXISTS (SELECT 1 FROM ledger_purchase p
                  WHERE p.member_id = m.id AND p.occurred_at >= %(since)s)
      AND EXISTS (SELECT 1 FROM ledger_purchase p
                  JOIN ledger_purchaseline l ON l.purchase_id = p.id
                  WHERE p.member_id = m.id AND p.occurred_at >= %(since)s
                    AND l.category = 'coffee')
"""
CHAMPIONS = {"all": [{"condition": "rfm", "segment": "champions"}]}


def _count_sql(sql, params):
    def count():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()[0]

    return count


def _measure(name, definition, reference, *, members, repeat=REPEAT, warmup=1, note=""):
    sizes, expected = set(), []
    product = figures.samples_ms(
        lambda: sizes.add(segment_count(definition)), repeat=repeat, warmup=warmup
    )
    ref = figures.samples_ms(lambda: expected.append(reference()), repeat=repeat, warmup=warmup)
    figures.report(
        f"segment count, {name} ({members:,} members), p95",
        figures.p95(product),
        "ms",
        reference=figures.p95(ref),
        goal=1000,
        note=f"{min(sizes):,} members; reference {expected[-1]:,}; p95 of {repeat}{note}",
    )


def main() -> None:
    members = figures.members_generated()
    now = timezone.now()
    # The segment's "days" windows count from the local midnight; the reference's too.
    since = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
        days=90
    )
    _measure(
        "tier + recency + category",
        TYPICAL,
        _count_sql(TYPICAL_SQL, {"since": since}),
        members=members,
    )
    cells = sorted(rfm.PRESETS["champions"])
    scored, params = rfm.scored_sql(now)
    marks = ", ".join(["%s"] * len(cells))
    ranking = _count_sql(
        f"SELECT count(*) FROM ({scored}) s WHERE s.r * 10 + s.f IN ({marks})",  # noqa: S608
        [*params, *cells],
    )
    with transaction.atomic():
        # Without the night's scores: the count ranks the purchases itself.
        RfmScoring.objects.all().delete()
        # About a minute a count at a million members, its reference too: fewer of them there.
        live = REPEAT if members < LARGE else LIVE_REPEAT_LARGE
        _measure(
            "RFM champions, ranked in the count",
            CHAMPIONS,
            ranking,
            members=members,
            repeat=live,
            warmup=int(members < LARGE),
        )
        rfm_scores_refresh(now=now)
        stored = _count_sql(
            "SELECT count(*) FROM campaigns_rfmscore s JOIN members_member m"
            f" ON m.id = s.member_id WHERE m.status = 'active' AND s.cell IN ({marks})",
            cells,
        )
        _measure("RFM champions, from the night's scores", CHAMPIONS, stored, members=members)
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
