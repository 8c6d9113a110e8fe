"""The bulk tier recalculation (chunks by member id range) against the same rules applied one
member at a time, on a randomised programme: a random ladder (thresholds, windows, grace), random
earnings, clawbacks and redemptions, and runs at several moments so that grace clocks start,
stop and run out."""

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from campaigns.tiers import _target, qualifying_points, tiers_recalculate
from ledger.services import points_earn, points_redeem, points_reverse
from members.models import AuditEntry, Member, Tier, TierHistory
from members.services import member_enrol
from tests.members.factories import TierFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)
MOMENTS = [NOW + timedelta(days=days) for days in (0, 20, 45, 95, 200, 400)]


class Rollback(Exception):
    pass


def _programme(rng: random.Random) -> list[int]:
    TierFactory(name="Entry", rank=0, threshold=0)
    threshold = 0
    for rank in range(1, 4):
        threshold += rng.choice([150, 300, 600])
        TierFactory(
            name=f"T{rank}",
            rank=rank,
            threshold=threshold,
            window_months=rng.choice([1, 3, 6, 12]),
            downgrade_grace_days=rng.choice([0, 0, 30, 60]),
        )
    ids = []
    for index in range(40):
        member = member_enrol(email=f"r{index}@example.nl")
        ids.append(member.pk)
        balance = 0
        for _ in range(rng.randint(0, 5)):
            at = NOW - timedelta(days=rng.randint(0, 420), hours=rng.randint(0, 23))
            entry = points_earn(member=member, points=rng.choice([50, 120, 300, 700]), at=at)
            balance += entry.amount
            if rng.random() < 0.2:
                points_reverse(entry=entry, points=entry.amount // 2, reason="return", at=at)
                balance -= entry.amount // 2
        if balance >= 10 and rng.random() < 0.3:
            points_redeem(member=member, points=10)
    # A member whose tier is set by hand, and an erased one: the run takes them as they are.
    Member.objects.filter(pk=ids[0]).update(tier=Tier.objects.get(rank=3))
    Member.objects.filter(pk=ids[1]).update(status=Member.Status.ERASED)
    return ids


def _state(ids):
    members = Member.objects.filter(pk__in=ids).order_by("pk")
    history = TierHistory.objects.filter(member_id__in=ids).exclude(reason="enrol")
    return (
        [(m.pk, m.tier_id, m.tier_since, m.tier_below_since) for m in members],
        sorted(
            (h.member_id, h.from_tier_id, h.to_tier_id, h.reason, h.qualifying_points, h.at)
            for h in history
        ),
        AuditEntry.objects.filter(member_id__in=ids, action="member_tier_set").count(),
    )


def _play(ids, run):
    """The state after each moment's run, then everything rolled back."""
    states = []
    try:
        with transaction.atomic():
            for moment in MOMENTS:
                counts = run(moment)
                states.append((counts, _state(ids)))
            raise Rollback
    except Rollback:
        pass
    return states


def _add(total, counts):
    return {name: total.get(name, 0) + value for name, value in counts.items()}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bulk_equals_one_member_at_a_time(seed):
    ids = _programme(random.Random(seed))

    def one_by_one(moment):
        counts = {}
        for member_id in ids:
            counts = _add(counts, tiers_recalculate(now=moment, member_ids=[member_id]))
        return counts

    whole = _play(ids, lambda moment: tiers_recalculate(now=moment))
    chunked = _play(ids, lambda moment: tiers_recalculate(now=moment, chunk_size=7))
    single = _play(ids, one_by_one)
    assert whole == chunked == single
    # Something happened: upgrades at the first run, downgrades later.
    assert whole[0][0]["upgraded"] > 0
    assert sum(counts["downgraded"] for counts, _state in whole) > 0


def test_every_upgrade_of_a_run_is_the_target_one_members_points_give():
    rng = random.Random(7)
    ids = _programme(rng)
    tiers = list(Tier.objects.all())
    tiers_recalculate(now=NOW)
    for member in Member.objects.filter(pk__in=ids[2:]):
        target = _target(tiers, qualifying_points(member=member, now=NOW, tiers=tiers))
        held = member.tier.rank if member.tier_id else -1
        # A member below the tier held keeps it during grace; otherwise it is the target.
        assert held >= target.rank
        if held > target.rank:
            assert member.tier_below_since == NOW or member.tier.downgrade_grace_days == 0
