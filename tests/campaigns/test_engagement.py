"""Engagement events: points, moderation, limits, birthdays (campaigns/services/engagement.py)."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from campaigns.models import (
    EngagementEvent,
)
from campaigns.services import (
    event_approve,
    event_record,
    event_reject,
)
from ledger.models import Entry
from loyalty_site.errors import DomainError
from tests.campaigns.factories import (
    EngagementKindFactory,
)
from tests.campaigns.purchasing import T0, balance
from tests.factories import MemberFactory, UserFactory


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
