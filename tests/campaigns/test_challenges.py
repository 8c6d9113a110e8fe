"""Challenges and badges (campaigns/services/challenges.py)."""

import threading
from datetime import timedelta

import pytest
from django.db import connection

from campaigns.models import (
    Challenge,
    ChallengeProgress,
    MemberBadge,
)
from campaigns.selectors import badges_for, challenges_for
from campaigns.services import (
    event_approve,
    event_record,
)
from tests.campaigns.factories import (
    BadgeFactory,
    ChallengeFactory,
    EarningRuleFactory,
    EngagementKindFactory,
)
from tests.campaigns.purchasing import T0, balance, buy
from tests.factories import MemberFactory, UserFactory


@pytest.mark.django_db
def test_purchase_count_challenge_completes_once_with_points_and_badge():
    badge = BadgeFactory(code="regular")
    challenge = ChallengeFactory(
        name="3 in 30 days", target=3, window_days=30, reward_points=100, badge=badge
    )
    member = MemberFactory()
    buy(member, "A", at=T0)
    buy(member, "B", at=T0 + timedelta(days=1))
    result = buy(member, "C", at=T0 + timedelta(days=2))
    assert result.extras == [{"challenge": "3 in 30 days", "points": 100}]
    buy(member, "D", at=T0 + timedelta(days=3))
    progress = ChallengeProgress.objects.get(challenge=challenge, member=member)
    assert progress.completed_at is not None
    assert balance(member) == 100
    assert list(badges_for(member=member).values_list("badge__code", flat=True)) == ["regular"]
    rows = challenges_for(member=member)
    assert rows[0]["completed_at"] is not None


@pytest.mark.django_db
def test_spend_in_category_challenge_counts_only_that_category():
    ChallengeFactory(
        name="Spend 100 on coffee", goal=Challenge.Goal.SPEND, category="coffee", target=100,
        reward_points=500,
    )  # fmt: skip
    member = MemberFactory()
    lines = [
        {"sku": "BEANS", "category": "coffee", "quantity": 1, "amount": "60.00"},
        {"sku": "MILK", "category": "dairy", "quantity": 1, "amount": "60.00"},
    ]
    buy(member, "A", amount="120.00", lines=lines)
    assert balance(member) == 0
    buy(member, "B", amount="120.00", lines=lines)
    assert balance(member) == 500


@pytest.mark.django_db
def test_event_count_challenge_counts_credited_events_of_its_kind():
    review = EngagementKindFactory(code="review", points=0, requires_approval=True)
    EngagementKindFactory(code="share", points=0)
    ChallengeFactory(
        name="Write 2 reviews", goal=Challenge.Goal.EVENT_COUNT, event_kind=review, target=2,
        reward_points=80,
    )  # fmt: skip
    member, moderator = MemberFactory(), UserFactory()
    first = event_record(member=member, kind="review", reference="1")
    event_record(member=member, kind="share")
    second = event_record(member=member, kind="review", reference="2")
    assert balance(member) == 0
    event_approve(event=first, actor=moderator)
    event_approve(event=second, actor=moderator)
    assert balance(member) == 80


@pytest.mark.django_db
def test_challenge_outside_its_dates_does_not_count():
    ChallengeFactory(target=1, starts_at=T0 + timedelta(days=10), reward_points=10)
    member = MemberFactory()
    buy(member, "A", at=T0)
    assert not ChallengeProgress.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_completion_rewards_once():
    badge = BadgeFactory()
    ChallengeFactory(target=1, reward_points=70, badge=badge)
    EarningRuleFactory(rate=0)
    member = MemberFactory()
    barrier = threading.Barrier(4)

    def worker(i):
        try:
            barrier.wait()
            buy(member, f"Q{i}")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert balance(member) == 70
    assert MemberBadge.objects.filter(member=member).count() == 1


@pytest.mark.django_db
def test_window_restarts_when_progress_is_too_slow():
    challenge = ChallengeFactory(target=2, window_days=30, reward_points=10)
    member = MemberFactory()
    buy(member, "A", at=T0)
    buy(member, "B", at=T0 + timedelta(days=40))
    progress = ChallengeProgress.objects.get(challenge=challenge, member=member)
    assert progress.value == 1
    assert progress.completed_at is None
    buy(member, "C", at=T0 + timedelta(days=41))
    progress.refresh_from_db()
    assert progress.completed_at is not None
