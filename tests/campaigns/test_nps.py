"""NPS on the survey kind: the score at each entry, the member's latest score, the summary."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.urls import reverse

from campaigns.models import EngagementEvent
from campaigns.nps import nps_summary
from campaigns.services import event_approve, event_record, event_reject
from loyalty_site.errors import DomainError
from members.models import Member, Tier
from tests.campaigns.factories import EngagementKindFactory
from tests.factories import MemberFactory, UserFactory
from tests.ledger.concurrency import run_together

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def survey(db):
    return EngagementKindFactory(code="survey", points=25, collects_nps=True, limit_count=None)


def _refusal(call) -> DomainError:
    with pytest.raises(DomainError) as excinfo:
        call()
    return excinfo.value


# --- the score where it enters ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_survey_answer_needs_a_score_and_keeps_it(survey):
    member = MemberFactory()
    error = _refusal(lambda: event_record(member=member, kind="survey", reference="S-1"))
    assert (error.code, error.status, list(error.fields)) == ("score_required", 422, ["score"])
    assert not EngagementEvent.objects.exists()

    event = event_record(member=member, kind="survey", reference="S-1", score=9, at=T0)
    assert EngagementEvent.objects.get().score == 9
    assert event.status == EngagementEvent.Status.CREDITED
    member.refresh_from_db()
    assert (member.nps_score, member.nps_at) == (9, T0)


@pytest.mark.django_db
def test_a_score_on_a_kind_without_nps_is_refused():
    EngagementKindFactory(code="share")
    member = MemberFactory()
    error = _refusal(lambda: event_record(member=member, kind="share", score=8))
    assert (error.code, list(error.fields)) == ("score_not_collected", ["score"])
    assert not EngagementEvent.objects.exists()
    event_record(member=member, kind="share")  # and without a score it is fine
    member.refresh_from_db()
    assert member.nps_score is None and member.nps_at is None


@pytest.mark.django_db
@pytest.mark.parametrize("score", [-1, 11, 100, True, 9.5, "9"])
def test_the_service_refuses_a_score_outside_0_to_10(survey, score):
    member = MemberFactory()
    error = _refusal(lambda: event_record(member=member, kind="survey", score=score))
    assert (error.code, list(error.fields)) == ("invalid_score", ["score"])
    assert not EngagementEvent.objects.exists()
    member.refresh_from_db()
    assert member.nps_score is None


@pytest.mark.django_db
@pytest.mark.parametrize("score", [0, 10])
def test_both_ends_of_the_scale_are_scores(survey, score):
    member = MemberFactory()
    event_record(member=member, kind="survey", score=score, at=T0)
    member.refresh_from_db()
    assert member.nps_score == score


@pytest.mark.django_db
def test_the_database_refuses_a_score_outside_0_to_10(survey):
    member = MemberFactory()
    event = event_record(member=member, kind="survey", score=7, at=T0)
    with pytest.raises(IntegrityError), transaction.atomic():
        EngagementEvent.objects.filter(pk=event.pk).update(score=11)
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.filter(pk=member.pk).update(nps_score=11)
    # A score without the time it was given could never be compared with a later one.
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.filter(pk=member.pk).update(nps_at=None)
    member.refresh_from_db()
    assert (member.nps_score, member.nps_at) == (7, T0)


@pytest.mark.django_db
def test_the_models_validators_refuse_a_score_outside_0_to_10(survey):
    # What any ModelForm (the admin's included) runs before saving.
    member = MemberFactory()
    event = EngagementEvent(member=member, kind=survey, status="approved", score=11)
    with pytest.raises(ValidationError) as excinfo:
        event.full_clean()
    assert "score" in excinfo.value.message_dict
    member.nps_score, member.nps_at = 11, T0
    with pytest.raises(ValidationError) as excinfo:
        member.full_clean()
    assert "nps_score" in excinfo.value.message_dict


# --- the member's latest score ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_newer_answer_replaces_the_score_and_a_late_older_one_does_not(survey):
    member = MemberFactory()
    event_record(member=member, kind="survey", reference="S-1", score=4, at=T0)
    event_record(member=member, kind="survey", reference="S-2", score=9, at=T0 + timedelta(days=30))
    member.refresh_from_db()
    assert (member.nps_score, member.nps_at) == (9, T0 + timedelta(days=30))

    # An answer given before the kept one, uploaded late: recorded, but not the latest.
    late = event_record(
        member=member, kind="survey", reference="S-0", score=2, at=T0 + timedelta(days=10)
    )
    assert late.score == 2 and late.status == EngagementEvent.Status.CREDITED
    member.refresh_from_db()
    assert (member.nps_score, member.nps_at) == (9, T0 + timedelta(days=30))

    # Given at the same moment as the kept one: the one accepted last wins.
    event_record(member=member, kind="survey", reference="S-3", score=6, at=T0 + timedelta(days=30))
    member.refresh_from_db()
    assert member.nps_score == 6


@pytest.mark.django_db
def test_a_moderated_answer_counts_when_approved_and_a_rejected_one_never():
    EngagementKindFactory(code="survey", collects_nps=True, requires_approval=True)
    member, moderator = MemberFactory(), UserFactory()
    older = event_record(member=member, kind="survey", reference="S-1", score=3, at=T0)
    newer = event_record(
        member=member, kind="survey", reference="S-2", score=10, at=T0 + timedelta(days=1)
    )
    rejected = event_record(
        member=member, kind="survey", reference="S-3", score=0, at=T0 + timedelta(days=2)
    )
    member.refresh_from_db()
    assert member.nps_score is None  # nothing accepted yet

    event_approve(event=newer, actor=moderator)
    event_approve(event=older, actor=moderator)  # approved last, but answered first
    event_reject(event=rejected, actor=moderator)
    member.refresh_from_db()
    assert (member.nps_score, member.nps_at) == (10, T0 + timedelta(days=1))


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_concurrent_answers_keep_the_one_given_last(survey):
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL row locks")
    member = MemberFactory()
    # Eight answers given an hour apart arrive at once, in no particular order.
    answers = [(T0 + timedelta(hours=hour), score) for hour, score in enumerate([5, 8, 1, 10, 7])]
    answers += [(T0 + timedelta(hours=8), 3), (T0 + timedelta(hours=6), 9), (T0, 2)]
    results = run_together(
        *(
            lambda at=at, score=score, i=i: event_record(
                member=member, kind="survey", reference=f"S-{i}", score=score, at=at
            )
            for i, (at, score) in enumerate(answers)
        )
    )
    assert all(isinstance(result, EngagementEvent) for result in results), results
    member.refresh_from_db()
    assert (member.nps_score, member.nps_at) == (3, T0 + timedelta(hours=8))


# --- the admin ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_admin_shows_the_score_on_the_member_and_the_event(client, staff_user, survey):
    member = MemberFactory()
    event_record(member=member, kind="survey", reference="S-1", score=8, at=T0)
    client.force_login(staff_user("Customer service"))
    page = client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert page.status_code == 200
    form = page.context["adminform"]
    fields = [field for fieldset in form for line in fieldset for field in line]
    shown = {field.field["name"]: field.contents() for field in fields if field.is_readonly}
    assert shown["nps_score"] == "8"
    assert shown["nps_at"]
    listed = client.get(reverse("admin:campaigns_engagementevent_changelist"))
    assert listed.status_code == 200
    assert "score" in listed.context["cl"].list_display
    assert '<td class="field-score">8</td>' in listed.content.decode()


# --- the summary --------------------------------------------------------------------------------


@pytest.fixture
def answers_set(survey):
    """A known set: March and April 2026, two tiers and a member without a tier.

    Thresholds out of reach: the survey points must not move anyone up a tier.
    """
    silver = Tier.objects.create(name="Silver", rank=1, threshold=1_000_000)
    gold = Tier.objects.create(name="Gold", rank=2, threshold=2_000_000)
    members = {
        "s1": MemberFactory(tier=silver),
        "s2": MemberFactory(tier=silver),
        "g1": MemberFactory(tier=gold),
        "none": MemberFactory(),
    }
    march, april = datetime(2026, 3, 5, 10, tzinfo=UTC), datetime(2026, 4, 20, 10, tzinfo=UTC)
    given = [
        ("s1", march, 10),  # promoter
        ("s2", march, 9),  # promoter
        ("g1", march, 7),  # passive
        ("none", march, 2),  # detractor
        ("s1", april, 6),  # detractor
        ("g1", april, 10),  # promoter
        ("g1", april + timedelta(days=1), 8),  # passive
    ]
    for i, (who, at, score) in enumerate(given):
        event_record(member=members[who], kind="survey", reference=f"S-{i}", score=score, at=at)
    # Not answers: another kind, a pending and a rejected survey, one outside the period.
    EngagementKindFactory(code="share")
    event_record(member=members["s1"], kind="share", at=march)
    moderated = EngagementKindFactory(
        code="panel", collects_nps=True, requires_approval=True, limit_count=None
    )
    event_record(member=members["s2"], kind=moderated, reference="P-1", score=0, at=april)
    rejected = event_record(
        member=members["s2"], kind=moderated, reference="P-2", score=0, at=april
    )
    event_reject(event=rejected, actor=UserFactory())
    before = T0 - timedelta(days=60)
    event_record(member=members["s2"], kind="survey", reference="S-old", score=0, at=before)
    return members, silver, gold


@pytest.mark.django_db
def test_nps_summary_per_month(answers_set, django_assert_num_queries):
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    with django_assert_num_queries(1):
        rows = nps_summary(start=start, end=end)
    assert [
        (r.month, r.responses, r.promoters, r.passives, r.detractors, r.tier) for r in rows
    ] == [
        (date(2026, 3, 1), 4, 2, 1, 1, None),
        (date(2026, 4, 1), 3, 1, 1, 1, None),
    ]
    assert rows[0].nps == pytest.approx(25.0)  # (2 − 1) / 4
    assert rows[1].nps == pytest.approx(0.0)  # (1 − 1) / 3


@pytest.mark.django_db
def test_nps_summary_per_tier(answers_set, django_assert_num_queries):
    _members, silver, gold = answers_set
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    with django_assert_num_queries(1):
        rows = nps_summary(start=start, end=end, by_tier=True)
    assert [(r.month, r.tier, r.responses, r.nps) for r in rows] == [
        (date(2026, 3, 1), "Silver", 2, 100.0),
        (date(2026, 3, 1), "Gold", 1, 0.0),
        (date(2026, 3, 1), None, 1, -100.0),
        (date(2026, 4, 1), "Silver", 1, -100.0),
        (date(2026, 4, 1), "Gold", 2, 50.0),
    ]
    assert rows[0].tier_id == silver.pk and rows[1].tier_id == gold.pk


@pytest.mark.django_db
def test_nps_summary_of_some_members_and_months_in_the_programme_time_zone(answers_set, settings):
    members, _silver, gold = answers_set
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC)
    rows = nps_summary(start=start, end=end, members=Member.objects.filter(tier=gold))
    assert [(r.month, r.responses, r.nps) for r in rows] == [
        (date(2026, 3, 1), 1, 0.0),
        (date(2026, 4, 1), 2, 50.0),
    ]
    # 23:30 UTC on 31 March is 1 April in Amsterdam: the answer belongs to April there.
    settings.TIME_ZONE = "Europe/Amsterdam"
    late = MemberFactory()
    at = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    event_record(member=late, kind="survey", reference="S-late", score=10, at=at)
    rows = nps_summary(start=start, end=end, members=Member.objects.filter(pk=late.pk))
    assert [(r.month, r.promoters) for r in rows] == [(date(2026, 4, 1), 1)]
    assert nps_summary(start=end, end=end + timedelta(days=30)) == []
