"""A campaign's lifecycle: the table of transitions, scheduling checks, the frozen audience,
what may be edited in which status, and the scheduler that starts and ends campaigns on time."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from campaigns import control, services
from campaigns.errors import CampaignNotEditable, CampaignNotReady, CampaignTransitionInvalid
from campaigns.models import (
    Campaign,
    CampaignMemberUsage,
    CampaignTransition,
    Segment,
    SegmentSnapshotMember,
)
from campaigns.services.lifecycle import TRANSITIONS
from members.models import Member, Tier
from tests.campaigns.campaigning import buy, campaign_points, draft, running
from tests.factories import MemberFactory, UserFactory
from tests.ledger.concurrency import run_together

S = Campaign.Status
SERVICES = {
    "schedule": services.campaign_schedule,
    "unschedule": services.campaign_unschedule,
    "activate": services.campaign_activate,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "end": services.campaign_end,
    "archive": services.campaign_archive,
}


def in_status(status: str) -> Campaign:
    # Written directly: the point is what each service does from each status.
    start = timezone.now() + timedelta(hours=1)
    campaign = draft(starts_at=start, ends_at=start + timedelta(days=7))
    Campaign.objects.filter(pk=campaign.pk).update(status=status)
    campaign.refresh_from_db()
    return campaign


@pytest.mark.django_db
@pytest.mark.parametrize("status", S.values)
@pytest.mark.parametrize("action", list(TRANSITIONS))
def test_every_move_not_in_the_table_is_refused_and_leaves_no_trace(status, action):
    sources, _target = TRANSITIONS[action]
    if status in sources:
        pytest.skip("allowed: tested below")
    campaign = in_status(status)
    with pytest.raises(CampaignTransitionInvalid) as refused:
        SERVICES[action](campaign=campaign, actor=None)
    assert refused.value.code == "campaign_transition_invalid"
    campaign.refresh_from_db()
    assert campaign.status == status
    assert not CampaignTransition.objects.filter(campaign=campaign).exists()


@pytest.mark.django_db
def test_the_whole_life_is_recorded_with_actor_reason_and_statuses():
    staff = UserFactory(is_staff=True)
    member = MemberFactory()
    campaign = draft(starts_at=timezone.now() + timedelta(hours=1))
    services.campaign_schedule(campaign=campaign, actor=staff, reason="approved by Ann")
    services.campaign_activate(campaign=campaign, actor=staff, reason="start early")
    services.campaign_pause(campaign=campaign, actor=staff, reason="complaint")
    services.campaign_resume(campaign=campaign, actor=staff, reason="fixed")
    services.campaign_end(campaign=campaign, actor=staff, reason="enough")
    services.campaign_archive(campaign=campaign, actor=staff, reason="tidy")
    moves = list(
        CampaignTransition.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("from_status", "to_status", "actor", "reason")
    )
    assert moves == [
        (S.DRAFT, S.SCHEDULED, staff.pk, "approved by Ann"),
        (S.SCHEDULED, S.ACTIVE, staff.pk, "start early"),
        (S.ACTIVE, S.PAUSED, staff.pk, "complaint"),
        (S.PAUSED, S.ACTIVE, staff.pk, "fixed"),
        (S.ACTIVE, S.ENDED, staff.pk, "enough"),
        (S.ENDED, S.ARCHIVED, staff.pk, "tidy"),
    ]
    campaign.refresh_from_db()
    # Started by hand before its start: it started then; ended early: it ended then.
    assert campaign.starts_at <= campaign.ends_at <= timezone.now()
    assert list(
        SegmentSnapshotMember.objects.filter(snapshot=campaign.audience).values_list(
            "member", flat=True
        )
    ) == [member.pk]


@pytest.mark.django_db
def test_scheduling_checks_each_field_and_names_the_problems():
    now = timezone.now()
    broken = Segment.objects.create(name="Broken", definition={"condition": "telepathy"})
    earning = draft(rules=(), starts_at=now - timedelta(hours=1), ends_at=None, segment=broken)
    with pytest.raises(CampaignNotReady) as refused:
        services.campaign_schedule(campaign=earning, actor=None, now=now)
    assert set(refused.value.fields) == {"starts_at", "segment", "rules"}
    message = draft(
        rules=(),
        kind=Campaign.Kind.MESSAGE,
        starts_at=now - timedelta(hours=2),
        ends_at=now - timedelta(hours=1),
    )
    assert set(services.campaign_schedule_problems(message, now=now)) == {
        "starts_at",
        "ends_at",
        "templates",
    }
    assert earning.status == S.DRAFT
    assert not CampaignTransition.objects.exists()


@pytest.mark.django_db
@override_settings(LOYALTY_POINT_VALUE=Decimal("0.02"))
def test_scheduling_freezes_the_point_value_the_money_budget_counts_at():
    campaign = draft(starts_at=timezone.now() + timedelta(hours=1), budget_money=Decimal("5"))
    services.campaign_schedule(campaign=campaign, actor=None)
    campaign.refresh_from_db()
    assert campaign.status == S.SCHEDULED
    assert campaign.point_value == Decimal("0.02")


@pytest.mark.django_db
@override_settings(LOYALTY_HOLDOUT_BASIS_POINTS=5000)
def test_the_audience_is_the_segment_at_the_start_without_the_programme_holdout():
    gold = Tier.objects.create(name="Gold", rank=50, threshold=5000)
    golds = [MemberFactory(tier=gold) for _ in range(30)]
    MemberFactory()  # not gold
    MemberFactory(tier=gold, status=Member.Status.BLOCKED)
    segment = Segment.objects.create(
        name="Gold", definition={"all": [{"condition": "tier", "in": ["Gold"]}]}
    )
    campaign = running(segment=segment)
    late = MemberFactory(tier=gold)  # after the start: not in the frozen audience
    held_out = Member.objects.filter(control.holdout_q()).values_list("pk", flat=True)
    expected = {m.pk for m in golds} - set(held_out)
    assert 0 < len(expected) < 30  # the holdout took some, not all
    frozen = set(
        SegmentSnapshotMember.objects.filter(snapshot=campaign.audience).values_list(
            "member", flat=True
        )
    )
    assert frozen == expected
    assert campaign.audience.size == len(expected)
    assert late.pk not in frozen


@pytest.mark.django_db
def test_a_paused_campaign_gives_nothing_and_resumes_but_not_after_its_end():
    member = MemberFactory()
    campaign = running()
    assert campaign_points(buy(member)) == 10
    services.campaign_pause(campaign=campaign, actor=None)
    assert campaign_points(buy(member)) == 0
    services.campaign_resume(campaign=campaign, actor=None)
    assert campaign_points(buy(member)) == 10
    services.campaign_pause(campaign=campaign, actor=None)
    with pytest.raises(CampaignTransitionInvalid):
        services.campaign_resume(campaign=campaign, actor=None, now=campaign.ends_at)


@pytest.mark.django_db
def test_a_draft_is_edited_freely_a_scheduled_one_goes_back_to_draft_first():
    segment = Segment.objects.create(name="All", definition={"all": []})
    campaign = draft(starts_at=timezone.now() + timedelta(hours=1))
    services.campaign_update(
        campaign=campaign,
        actor=None,
        changes={"segment": segment, "control_basis_points": 2000, "budget_points": 100},
    )
    services.campaign_schedule(campaign=campaign, actor=None)
    with pytest.raises(CampaignNotEditable) as refused:
        services.campaign_update(campaign=campaign, actor=None, changes={"budget_points": 50})
    assert refused.value.code == "campaign_not_editable"
    assert set(refused.value.fields) == {"budget_points"}
    services.campaign_unschedule(campaign=campaign, actor=None, reason="rework")
    services.campaign_update(campaign=campaign, actor=None, changes={"budget_points": 50})
    campaign.refresh_from_db()
    assert (campaign.status, campaign.budget_points, campaign.control_basis_points) == (
        S.DRAFT,
        50,
        2000,
    )


@pytest.mark.django_db
def test_a_running_campaign_may_only_move_its_end_and_raise_its_limits():
    staff = UserFactory(is_staff=True)
    member = MemberFactory()
    campaign = running(budget_points=100, member_cap_points=15, member_cap_period="day")
    buy(member)
    refusals = {
        "budget_points": 99,  # lower
        "member_cap_points": None,  # removed
        "budget_money": Decimal("10"),  # a limit it did not have
        "control_basis_points": 100,  # not while running
        "ends_at": timezone.now() - timedelta(minutes=1),  # in the past
    }
    for name, value in refusals.items():
        with pytest.raises(CampaignNotEditable) as refused:
            services.campaign_update(campaign=campaign, actor=staff, changes={name: value})
        assert set(refused.value.fields) == {name}
    later = campaign.ends_at + timedelta(days=7)
    services.campaign_update(
        campaign=campaign,
        actor=staff,
        changes={"ends_at": later, "budget_points": 200, "member_cap_points": 25, "name": "Big"},
        reason="it works",
    )
    campaign.refresh_from_db()
    assert (campaign.ends_at, campaign.budget_points, campaign.name) == (later, 200, "Big")
    # The usage rows' cap follows, so the CHECK constraint allows the higher cap.
    assert list(CampaignMemberUsage.objects.values_list("cap", flat=True)) == [25]
    assert campaign_points(buy(member)) == 10
    change = CampaignTransition.objects.filter(campaign=campaign).latest("id")
    assert (change.from_status, change.to_status, change.actor) == (S.ACTIVE, S.ACTIVE, staff)
    assert change.reason == "Changed: budget_points, ends_at, member_cap_points, name. it works"


@pytest.mark.django_db
def test_the_scheduler_starts_and_ends_on_time_and_a_second_run_does_nothing():
    now = timezone.now()
    due = draft(starts_at=now + timedelta(minutes=10))
    later = draft(starts_at=now + timedelta(days=1))
    missed = draft(starts_at=now + timedelta(minutes=5), ends_at=now + timedelta(minutes=20))
    for campaign in (due, later, missed):
        services.campaign_schedule(campaign=campaign, actor=None, now=now)
    ending = running()
    Campaign.objects.filter(pk=ending.pk).update(ends_at=now + timedelta(minutes=15))

    at = now + timedelta(minutes=30)
    assert services.campaigns_advance(now=at) == {"started": 2, "ended": 2}
    assert services.campaigns_advance(now=at) == {"started": 0, "ended": 0}
    statuses = dict(Campaign.objects.values_list("pk", "status"))
    assert statuses == {due.pk: S.ACTIVE, later.pk: S.SCHEDULED, missed.pk: S.ENDED,
                        ending.pk: S.ENDED}  # fmt: skip
    # The missed one started (its audience frozen) and ended in the same run, by the scheduler.
    moves = CampaignTransition.objects.filter(campaign=missed).order_by("id")
    assert [(m.to_status, m.actor) for m in moves] == [
        (S.SCHEDULED, None),
        (S.ACTIVE, None),
        (S.ENDED, None),
    ]
    assert Campaign.objects.get(pk=missed.pk).audience is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_scheduler_runs_start_each_campaign_once():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    MemberFactory()
    now = timezone.now()
    campaigns = [draft(starts_at=now + timedelta(minutes=1)) for _ in range(3)]
    for campaign in campaigns:
        services.campaign_schedule(campaign=campaign, actor=None, now=now)
    at = now + timedelta(minutes=2)
    results = run_together(*[lambda: services.campaigns_advance(now=at) for _ in range(4)])
    assert all(isinstance(r, dict) for r in results), results
    assert sum(r["started"] for r in results) == 3
    for campaign in campaigns:
        starts = CampaignTransition.objects.filter(campaign=campaign, to_status=S.ACTIVE)
        assert starts.count() == 1
    # One audience each: a second start would have frozen another snapshot.
    assert SegmentSnapshotMember.objects.count() == 3
