import io
import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from campaigns.tiers import (
    months_before,
    qualifying_points,
    tier_progress,
    tier_upgrade_on_earn,
    tiers_recalculate,
)
from ledger.services import points_earn, points_redeem, points_reverse
from members.events import events_emitted
from members.models import AuditEntry, Member, TierHistory
from members.services import member_enrol
from tests.members.factories import TierFactory, ladder

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)


def _member(name="m"):
    return member_enrol(email=f"{name}@example.nl")


def _tier(member):
    member.refresh_from_db()
    return member.tier.name if member.tier_id else None


def test_months_before_clamps_to_the_end_of_the_month():
    assert months_before(datetime(2026, 3, 31, 12, tzinfo=UTC), 1) == datetime(
        2026, 2, 28, 12, tzinfo=UTC
    )
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 12) == datetime(2025, 1, 15, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(
        2024, 12, 15, tzinfo=UTC
    )


def test_exactly_at_the_threshold_qualifies_one_point_below_does_not():
    ladder()
    at, below = _member("at"), _member("below")
    points_earn(member=at, points=500, at=NOW - timedelta(days=1))
    points_earn(member=below, points=499, at=NOW - timedelta(days=1))
    counts = tiers_recalculate(now=NOW)
    assert _tier(at) == "Silver"
    assert _tier(below) == "Bronze"
    assert counts["upgraded"] == 1  # both start in Bronze, the entry tier, at enrolment


def test_window_edges_an_entry_exactly_on_the_window_start_counts_one_second_earlier_not():
    ladder()
    on_edge, outside = _member("edge"), _member("outside")
    window_start = months_before(NOW, 12)
    points_earn(member=on_edge, points=500, at=window_start)
    points_earn(member=outside, points=500, at=window_start - timedelta(seconds=1))
    tiers_recalculate(now=NOW)
    assert _tier(on_edge) == "Silver"
    assert _tier(outside) == "Bronze"


def test_entries_after_now_do_not_count():
    ladder()
    member = _member()
    points_earn(member=member, points=600, at=NOW + timedelta(hours=1))
    tiers_recalculate(now=NOW)
    assert _tier(member) == "Bronze"


def test_each_tier_uses_its_own_window():
    TierFactory(name="Silver", rank=1, threshold=500, window_months=12)
    TierFactory(name="Gold", rank=2, threshold=1000, window_months=3)
    member = _member()
    points_earn(member=member, points=600, at=NOW - timedelta(days=200))
    points_earn(member=member, points=600, at=NOW - timedelta(days=10))
    tiers_recalculate(now=NOW)
    assert _tier(member) == "Silver"  # 1200 over 12 months, but only 600 over Gold's 3
    assert qualifying_points(member=member, now=NOW) == {
        member.tier.pk: 1200,
        member.tier.__class__.objects.get(name="Gold").pk: 600,
    }


def test_redemptions_do_not_reduce_qualifying_points_but_return_clawbacks_do():
    ladder()
    spender, returner = _member("spender"), _member("returner")
    points_earn(member=spender, points=600, at=NOW - timedelta(days=5))
    points_redeem(member=spender, points=400)
    earned = points_earn(member=returner, points=600, at=NOW - timedelta(days=5))
    points_reverse(entry=earned, points=200, reason="return", at=NOW - timedelta(days=4))
    tiers_recalculate(now=NOW)
    assert _tier(spender) == "Silver"
    assert _tier(returner) == "Bronze"


def test_recalculation_is_idempotent():
    ladder()
    members = [_member(f"m{i}") for i in range(5)]
    for i, member in enumerate(members):
        if i:
            points_earn(member=member, points=400 * i, at=NOW - timedelta(days=3))
    first = tiers_recalculate(now=NOW)
    history = TierHistory.objects.count()
    tiers = [_tier(member) for member in members]
    second = tiers_recalculate(now=NOW)
    assert first["upgraded"] == 3  # 800, 1200, 1600 points; the others stay in Bronze
    assert second == {"upgraded": 0, "downgraded": 0, "grace_started": 0, "grace_ended": 0}
    assert TierHistory.objects.count() == history
    assert (
        [_tier(member) for member in members]
        == tiers
        == [
            "Bronze",
            "Bronze",
            "Silver",
            "Silver",
            "Gold",
        ]
    )


def test_history_records_each_change_with_its_reason_and_points():
    bronze, silver, gold = ladder()
    member = _member()
    points_earn(member=member, points=1600, at=NOW - timedelta(days=3))
    tiers_recalculate(now=NOW)
    enrolled, change = TierHistory.objects.filter(member=member).order_by("id")
    assert (enrolled.from_tier, enrolled.to_tier, enrolled.reason) == (None, bronze, "enrol")
    assert (change.from_tier, change.to_tier, change.reason) == (bronze, gold, "qualified")
    assert change.qualifying_points == 1600
    assert change.at == NOW


def test_downgrade_waits_for_the_grace_period():
    bronze, silver, gold = ladder()  # Gold: 30 days grace
    member = _member()
    points_earn(member=member, points=1500, at=NOW - timedelta(days=360))
    tiers_recalculate(now=NOW)
    assert _tier(member) == "Gold"

    # Six days later the points leave the window: below Gold, the grace clock starts.
    later = NOW + timedelta(days=6)
    counts = tiers_recalculate(now=later)
    assert counts["grace_started"] == 1 and counts["downgraded"] == 0
    assert _tier(member) == "Gold"
    member.refresh_from_db()
    assert member.tier_below_since == later

    # One second before the grace period ends: still Gold. At its end: down to Bronze.
    assert tiers_recalculate(now=later + timedelta(days=30, seconds=-1))["downgraded"] == 0
    assert _tier(member) == "Gold"
    assert tiers_recalculate(now=later + timedelta(days=30))["downgraded"] == 1
    assert _tier(member) == "Bronze"
    change = TierHistory.objects.filter(member=member).first()
    assert (change.from_tier, change.to_tier, change.reason) == (gold, bronze, "downgrade")
    member.refresh_from_db()
    assert member.tier_below_since is None


def test_requalifying_within_grace_keeps_the_tier_and_stops_the_clock():
    ladder()
    member = _member()
    points_earn(member=member, points=1500, at=NOW - timedelta(days=360))
    tiers_recalculate(now=NOW)
    tiers_recalculate(now=NOW + timedelta(days=6))
    points_earn(member=member, points=1500, at=NOW + timedelta(days=7))
    counts = tiers_recalculate(now=NOW + timedelta(days=8))
    assert counts["grace_ended"] == 1
    member.refresh_from_db()
    assert member.tier_below_since is None
    tiers_recalculate(now=NOW + timedelta(days=60))
    assert _tier(member) == "Gold"


def test_no_grace_downgrades_at_once():
    ladder()  # Silver: no grace
    member = _member()
    points_earn(member=member, points=500, at=NOW - timedelta(days=360))
    tiers_recalculate(now=NOW)
    assert _tier(member) == "Silver"
    assert tiers_recalculate(now=NOW + timedelta(days=6))["downgraded"] == 1
    assert _tier(member) == "Bronze"


def test_enrolment_starts_in_the_entry_tier():
    bronze, _silver, _gold = ladder()
    member = _member()
    assert _tier(member) == "Bronze"
    history = TierHistory.objects.get(member=member)
    assert (history.from_tier, history.to_tier, history.reason) == (None, bronze, "enrol")
    assert history.at == member.enrolled_at == member.tier_since


def test_without_a_tier_that_needs_no_points_enrolment_gives_none():
    TierFactory(name="Silver", rank=1, threshold=500)
    member = _member()
    assert _tier(member) is None
    assert not TierHistory.objects.filter(member=member).exists()


def test_erased_members_are_left_alone():
    ladder()
    member = _member()
    points_earn(member=member, points=600, at=NOW - timedelta(days=1))
    Member.objects.filter(pk=member.pk).update(status=Member.Status.ERASED)
    tiers_recalculate(now=NOW)
    assert _tier(member) == "Bronze"


def test_upgrade_on_earn_is_immediate_and_never_downgrades():
    bronze, silver, gold = ladder()
    member = _member()
    assert _tier(member) == "Bronze"
    assert tier_upgrade_on_earn(member=member) is None
    points_earn(member=member, points=600)
    change = tier_upgrade_on_earn(member=member)
    assert change.to_tier == silver and change.reason == "earn"
    assert tier_upgrade_on_earn(member=member) is None
    Member.objects.filter(pk=member.pk).update(tier=gold)
    member.refresh_from_db()
    assert tier_upgrade_on_earn(member=member) is None
    assert _tier(member) == "Gold"


def test_tier_progress_shows_points_to_the_next_tier():
    ladder()
    member = _member()
    points_earn(member=member, points=600)
    tier_upgrade_on_earn(member=member)
    member.refresh_from_db()
    assert tier_progress(member=member) == {
        "tier": "Silver",
        "next_tier": "Gold",
        "points_to_next_tier": 900,
        "next_tier_threshold": 1500,
        "qualifying_points": 600,
    }


def test_recalculation_runs_set_based(django_assert_max_num_queries):
    ladder()
    for i in range(30):
        points_earn(member=_member(f"m{i}"), points=50 * (i + 1), at=NOW - timedelta(days=2))
    # However many members move: the statements of the run, then per chunk of moves the
    # history read, the ladder, the public ids and one insert of audit rows.
    with django_assert_max_num_queries(28):
        counts = tiers_recalculate(now=NOW)
    assert counts["upgraded"] == 21  # 500 points and more; the others stay in Bronze


def test_recalculation_audits_and_announces_every_member_it_moves():
    ladder()
    up, stays = _member("up"), _member("stays")
    points_earn(member=up, points=600, at=NOW - timedelta(days=1))
    seen = []

    def listen(sender, events, **kwargs):
        seen.extend(events)

    events_emitted.connect(listen)
    try:
        tiers_recalculate(now=NOW)
    finally:
        events_emitted.disconnect(listen)
    assert [(e.type, e.data, e.channel) for e in seen] == [
        (
            "tier.changed",
            {"member": up.public_id, "from": "Bronze", "to": "Silver", "reason": "qualified"},
            "",
        )
    ]
    audit = AuditEntry.objects.get(action="member_tier_set", member=up)
    assert audit.actor is None and audit.at == NOW
    assert audit.details["reason"] == "qualified"
    assert not AuditEntry.objects.filter(member=stays).exists()


def test_command_runs_the_recalculation():
    # The nightly task is tested with the other campaign tasks (tests/campaigns/test_tasks.py).
    ladder()
    member = _member()
    points_earn(member=member, points=700)
    out = io.StringIO()
    call_command("recalc_tiers", stdout=out, stderr=io.StringIO())
    assert "upgraded 1, downgraded 0" in out.getvalue()
    assert _tier(member) == "Silver"


@pytest.mark.django_db(transaction=True)
def test_concurrent_runs_change_each_member_once():
    if connection.vendor != "postgresql":
        pytest.skip("real concurrency needs PostgreSQL")
    ladder()
    members = [_member(f"c{i}") for i in range(10)]
    for member in members:
        points_earn(member=member, points=600, at=NOW - timedelta(days=1))
    barrier = threading.Barrier(3)
    results = []

    def run():
        try:
            barrier.wait()
            results.append(tiers_recalculate(now=NOW)["upgraded"])
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [0, 0, 10]
    assert TierHistory.objects.exclude(reason=TierHistory.Reason.ENROL).count() == 10
