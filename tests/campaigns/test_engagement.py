"""Engagement events, moderation, referrals, challenges and badges."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from campaigns.models import (
    Challenge,
    ChallengeProgress,
    EngagementEvent,
    MemberBadge,
    Referral,
)
from campaigns.selectors import badges_for, challenges_for
from campaigns.services import (
    event_approve,
    event_record,
    event_reject,
    purchase_record,
    referral_code_for,
    referral_register,
)
from ledger.models import Account, Entry
from loyalty_site.errors import DomainError
from tests.campaigns.factories import (
    BadgeFactory,
    ChallengeFactory,
    EarningRuleFactory,
    EngagementKindFactory,
)
from tests.factories import MemberFactory, UserFactory

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def balance(member):
    account = Account.objects.filter(member=member).first()
    return account.balance if account else 0


def buy(member, external_id, amount="10.00", at=T0, lines=()):
    return purchase_record(
        member=member, channel="pos", external_id=external_id, amount=Decimal(amount),
        currency="EUR", occurred_at=at, lines=lines,
    )  # fmt: skip


@pytest.mark.django_db
def test_event_credits_points_at_once():
    member = MemberFactory()
    kind = EngagementKindFactory(code="survey", points=25)
    event = event_record(member=member, kind="survey", reference="S-1", channel="app")
    assert event.status == EngagementEvent.Status.CREDITED
    assert balance(member) == 25
    entry = Entry.objects.get(reference=f"event:{event.pk}")
    assert entry.explanation == [{"rule": kind.name, "rule_id": None, "points": 25}]


@pytest.mark.django_db
def test_same_reference_is_rewarded_once():
    member = MemberFactory()
    EngagementKindFactory(code="survey", points=25)
    event_record(member=member, kind="survey", reference="S-1")
    with pytest.raises(DomainError) as excinfo:
        event_record(member=member, kind="survey", reference="S-1")
    assert excinfo.value.code == "duplicate_event"
    assert balance(member) == 25


@pytest.mark.django_db
def test_limit_per_member_per_period():
    member = MemberFactory()
    EngagementKindFactory(code="share", points=5, limit_count=2, limit_period="day")
    event_record(member=member, kind="share", at=T0)
    event_record(member=member, kind="share", at=T0 + timedelta(hours=1))
    with pytest.raises(DomainError) as excinfo:
        event_record(member=member, kind="share", at=T0 + timedelta(hours=2))
    assert excinfo.value.code == "engagement_limit_reached"
    event_record(member=member, kind="share", at=T0 + timedelta(days=1))
    assert balance(member) == 15


@pytest.mark.django_db
def test_unknown_kind_is_refused():
    with pytest.raises(DomainError) as excinfo:
        event_record(member=MemberFactory(), kind="nope")
    assert excinfo.value.code == "unknown_event_kind"


@pytest.mark.django_db
def test_moderated_event_waits_then_credits_once_on_approval():
    member, moderator = MemberFactory(), UserFactory()
    EngagementKindFactory(code="review", points=50, requires_approval=True)
    event = event_record(member=member, kind="review", reference="R-1")
    assert event.status == EngagementEvent.Status.PENDING
    assert balance(member) == 0
    approved = event_approve(event=event, actor=moderator)
    assert approved.status == EngagementEvent.Status.CREDITED
    assert approved.decided_by == moderator
    assert balance(member) == 50
    with pytest.raises(DomainError) as excinfo:
        event_approve(event=event, actor=moderator)
    assert excinfo.value.code == "not_pending"
    assert balance(member) == 50


@pytest.mark.django_db
def test_rejected_event_gives_nothing_and_does_not_count_towards_the_limit():
    member, moderator = MemberFactory(), UserFactory()
    EngagementKindFactory(code="review", points=50, requires_approval=True, limit_count=1)
    event = event_record(member=member, kind="review", reference="R-1")
    assert event_reject(event=event, actor=moderator).status == EngagementEvent.Status.REJECTED
    assert balance(member) == 0
    with pytest.raises(DomainError):
        event_approve(event=event, actor=moderator)
    event_record(member=member, kind="review", reference="R-2")


@pytest.mark.django_db
def test_referral_rewards_both_parties_once_on_the_first_purchase(settings):
    settings.LOYALTY_REFERRAL_POINTS = 250
    referrer, newcomer = MemberFactory(), MemberFactory()
    code = referral_code_for(member=referrer)
    assert referral_code_for(member=referrer) == code
    referral_register(referred=newcomer, code=code.code.lower())
    buy(newcomer, "N1")
    buy(newcomer, "N2")
    assert balance(referrer) == 250
    assert balance(newcomer) == 250
    assert Referral.objects.get().rewarded_at is not None


@pytest.mark.django_db
def test_referral_codes_cannot_be_misused():
    member = MemberFactory()
    code = referral_code_for(member=member)
    with pytest.raises(DomainError):
        referral_register(referred=member, code=code.code)
    with pytest.raises(DomainError):
        referral_register(referred=MemberFactory(), code="UNKNOWN")
    newcomer = MemberFactory()
    referral_register(referred=newcomer, code=code.code)
    with pytest.raises(DomainError):
        referral_register(referred=newcomer, code=referral_code_for(member=MemberFactory()).code)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_purchases_reward_the_referral_once():
    EngagementKindFactory(code="referral", points=100)
    referrer, newcomer = MemberFactory(), MemberFactory()
    referral_register(referred=newcomer, code=referral_code_for(member=referrer).code)
    barrier = threading.Barrier(4)
    errors = []

    def worker(i):
        try:
            barrier.wait()
            buy(newcomer, f"P{i}")
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert balance(referrer) == 100
    assert balance(newcomer) == 100
    assert EngagementEvent.objects.filter(kind__code="referral").count() == 2


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
def test_birthday_task_rewards_todays_birthdays_once_a_year():
    from datetime import date

    from campaigns.services import birthdays_reward
    from campaigns.tasks import birthdays_reward as birthdays_task

    EngagementKindFactory(code="birthday", points=75, limit_count=None)
    today = date(2026, 11, 28)
    born_today = MemberFactory(birth_date=date(1990, 11, 28))
    MemberFactory(birth_date=date(1990, 11, 27))
    assert birthdays_reward(on=today) == 1
    assert birthdays_reward(on=today) == 0
    assert balance(born_today) == 75
    leapling = MemberFactory(birth_date=date(2000, 2, 29))
    assert birthdays_reward(on=date(2027, 2, 28)) == 1
    assert balance(leapling) == 75
    with time_machine.travel(datetime(2026, 11, 27, 8, tzinfo=UTC), tick=False):
        assert birthdays_task.delay().get() == 1  # the member born on 27 November
        assert birthdays_task.delay().get() == 0
