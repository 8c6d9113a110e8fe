"""Marketing's engagement kinds, challenges and badges pages (campaigns/views/engagement.py): the
lists' figures, the edit forms and their refusals, who may do what, CSP, query bounds."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import (
    Badge,
    Challenge,
    ChallengeProgress,
    EngagementEvent,
    EngagementKind,
    MemberBadge,
)
from loyalty_site.errors import DomainError
from members.models import AuditEntry
from tests.campaigns.factories import BadgeFactory, ChallengeFactory, EngagementKindFactory
from tests.factories import MemberFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client, staff_user):
    user = staff_user("Marketing")
    client.force_login(user)
    return user


def _event(kind, *, days_ago=0, status=EngagementEvent.Status.CREDITED):
    return EngagementEvent.objects.create(
        member=MemberFactory(),
        kind=kind,
        status=status,
        created_at=timezone.now() - timedelta(days=days_ago),
    )


def _row(html: str, attribute: str, value) -> str:
    start = html.index(f'{attribute}="{value}"')
    return html[start : html.index("</tr>", start)]


# --- engagement kinds ---


def test_the_kinds_list_counts_the_events_of_the_last_30_days(client, marketer):
    review = EngagementKindFactory(code="review", name="Product review", points=50)
    _event(review)
    _event(review, days_ago=29)
    _event(review, days_ago=31)  # too old
    _event(review, status=EngagementEvent.Status.PENDING)
    EngagementKindFactory(code="share", name="Social share")
    response = client.get(reverse("engagement-kinds"))
    kinds = {kind.code: kind for kind in response.context["kinds"]}
    assert (kinds["review"].events_recent, kinds["review"].events_pending) == (3, 1)
    assert kinds["share"].events_recent == 0
    assert "Product review" in _row(response.content.decode(), "data-kind", "review")


def test_edit_an_engagement_kind(client, marketer):
    kind = EngagementKindFactory(code="review", name="Review", points=50, limit_count=5)
    response = client.post(
        reverse("engagement-kind-edit", args=[kind.pk]),
        {
            "code": "hacked",  # disabled: the code stays
            "name": "Product review",
            "points": "75",
            "limit_count": "3",
            "limit_period": "week",
            "requires_approval": "on",
            "active": "on",
            "reason": "More for reviews",
        },
    )
    assert response.status_code == 302 and response.url == reverse("engagement-kinds")
    kind.refresh_from_db()
    assert (kind.code, kind.name, kind.points, kind.limit_count, kind.limit_period) == (
        "review",
        "Product review",
        75,
        3,
        "week",
    )
    assert kind.requires_approval and not kind.collects_nps
    audit = AuditEntry.objects.get()
    assert (audit.actor, audit.action, audit.reason) == (
        marketer,
        "engagement_kind_change",
        "More for reviews",
    )
    assert set(audit.details["changed"]) == {
        "name",
        "points",
        "limit_count",
        "limit_period",
        "requires_approval",
    }


def test_create_an_engagement_kind(client, marketer):
    response = client.post(
        reverse("engagement-kind-new"),
        {
            "code": "newsletter_signup",
            "name": "Newsletter sign-up",
            "points": "20",
            "limit_count": "1",
            "limit_period": "ever",
            "active": "on",
            "reason": "Spring campaign",
        },
    )
    assert response.status_code == 302
    kind = EngagementKind.objects.get(code="newsletter_signup")
    assert kind.points == 20 and kind.limit_period == "ever"
    assert AuditEntry.objects.get().action == "engagement_kind_create"


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"points": "-1"}, "points"),
        ({"points": str(2**31)}, "points"),
        ({"limit_count": "0"}, "limit_count"),
        ({"limit_period": "fortnight"}, "limit_period"),
        ({"code": "has spaces"}, "code"),
        ({"code": "review"}, "code"),  # taken
        ({"name": ""}, "name"),
        ({"reason": " "}, "reason"),
    ],
)
def test_a_bad_engagement_kind_is_a_field_error_and_saves_nothing(
    client, marketer, overrides, field
):
    EngagementKindFactory(code="review")
    data = {"code": "quiz", "name": "Quiz", "points": "5", "limit_period": "day", "reason": "x"}
    response = client.post(reverse("engagement-kind-new"), {**data, **overrides})
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not EngagementKind.objects.filter(code="quiz").exists()
    assert not AuditEntry.objects.exists()


# --- challenges ---


def _challenge_data(**overrides) -> dict:
    data = {
        "name": "Five reviews",
        "description": "",
        "active": "on",
        "goal": "event_count",
        "target": "5",
        "category": "",
        "event_kind": "",
        "window_days": "",
        "starts_at": "",
        "ends_at": "",
        "reward_points": "100",
        "badge": "",
        "reason": "Reviews drive sales",
    }
    data.update(overrides)
    return data


def test_the_challenges_list_shows_goal_period_reward_participants_and_completions(
    client, marketer
):
    badge = BadgeFactory(name="Regular")
    challenge = ChallengeFactory(
        name="Three visits", target=Decimal(3), window_days=30, reward_points=150, badge=badge
    )
    for completed in (True, False, False):
        ChallengeProgress.objects.create(
            challenge=challenge,
            member=MemberFactory(),
            value=Decimal(3 if completed else 1),
            window_start=timezone.now(),
            completed_at=timezone.now() if completed else None,
        )
    MemberBadge.objects.create(member=MemberFactory(), badge=badge)
    response = client.get(reverse("challenges"))
    row = {c.pk: c for c in response.context["challenges"]}[challenge.pk]
    assert (row.participants, row.completions) == (3, 1)
    html = _row(response.content.decode(), "data-challenge", challenge.pk)
    for text in ("3 purchases", "within 30 days", "150 points", "badge “Regular”"):
        assert text in html
    assert {b.name: b.holder_count for b in response.context["badges"]} == {"Regular": 1}


def test_edit_a_challenges_goal(client, marketer):
    review = EngagementKindFactory(code="review", name="Review")
    badge = BadgeFactory()
    challenge = ChallengeFactory(name="Three purchases", target=Decimal(3))
    response = client.post(
        reverse("challenge-edit", args=[challenge.pk]),
        _challenge_data(
            event_kind=str(review.pk),
            badge=str(badge.pk),
            window_days="60",
            starts_at="2027-01-01T00:00",
        ),
    )
    assert response.status_code == 302 and response.url == reverse("challenges")
    challenge.refresh_from_db()
    assert (challenge.goal, challenge.target, challenge.event_kind, challenge.badge) == (
        "event_count",
        Decimal(5),
        review,
        badge,
    )
    assert challenge.window_days == 60 and timezone.localtime(challenge.starts_at).year == 2027
    audit = AuditEntry.objects.get()
    assert audit.action == "challenge_change" and audit.reason == "Reviews drive sales"
    assert {"name", "goal", "target", "event_kind", "badge"} <= set(audit.details["changed"])


def test_create_a_spend_challenge(client, marketer):
    response = client.post(
        reverse("challenge-new"),
        _challenge_data(name="Coffee lover", goal="spend", target="99.50", category="coffee"),
    )
    assert response.status_code == 302
    challenge = Challenge.objects.get(name="Coffee lover")
    assert (challenge.goal, challenge.target, challenge.category) == (
        "spend",
        Decimal("99.50"),
        "coffee",
    )
    assert AuditEntry.objects.get().action == "challenge_create"


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"target": "0"}, "target"),
        ({"target": "2.5"}, "target"),  # a count is whole
        ({"target": "lots"}, "target"),
        ({"goal": "purchase_count", "category": "coffee"}, "category"),
        ({"goal": "spend", "event_kind": "KIND"}, "event_kind"),
        ({"goal": "teleport"}, "goal"),
        ({"starts_at": "2027-02-01T00:00", "ends_at": "2027-01-01T00:00"}, "ends_at"),
        ({"reward_points": "0"}, "reward_points"),  # nothing to gain
        ({"window_days": "0"}, "window_days"),
        ({"reason": ""}, "reason"),
    ],
)
def test_a_bad_challenge_is_a_field_error_and_saves_nothing(client, marketer, overrides, field):
    kind = EngagementKindFactory()
    overrides = {k: (str(kind.pk) if v == "KIND" else v) for k, v in overrides.items()}
    response = client.post(reverse("challenge-new"), _challenge_data(**overrides))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not Challenge.objects.exists() and not AuditEntry.objects.exists()


def test_challenge_save_checks_the_goal_for_every_caller(staff_user):
    challenge = Challenge(name="X", goal="purchase_count", target=Decimal(0), reward_points=1)
    with pytest.raises(DomainError) as refused:
        services.challenge_save(challenge=challenge, actor=staff_user("Marketing"), reason="x")
    assert set(refused.value.fields) == {"target"}
    assert not Challenge.objects.exists()


def test_create_and_edit_a_badge(client, marketer):
    response = client.post(
        reverse("badge-new"),
        {"code": "reviewer", "name": "Reviewer", "description": "", "reason": "New challenge"},
    )
    assert response.status_code == 302
    badge = Badge.objects.get(code="reviewer")
    client.post(
        reverse("badge-edit", args=[badge.pk]),
        {"code": "reviewer", "name": "Top reviewer", "description": "", "reason": "Clearer"},
    )
    badge.refresh_from_db()
    assert badge.name == "Top reviewer"
    assert list(AuditEntry.objects.order_by("pk").values_list("action", flat=True)) == [
        "badge_create",
        "badge_change",
    ]


# --- who may ---

ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]
MAY = {"Marketing", "Administrator"}


@pytest.mark.parametrize("role", ROLES)
def test_only_marketing_and_administrators_see_and_change_these_pages(client, staff_user, role):
    kind, challenge, badge = EngagementKindFactory(), ChallengeFactory(), BadgeFactory()
    client.force_login(staff_user(role))
    urls = [
        reverse("engagement-kinds"),
        reverse("engagement-kind-new"),
        reverse("engagement-kind-edit", args=[kind.pk]),
        reverse("challenges"),
        reverse("challenge-new"),
        reverse("challenge-edit", args=[challenge.pk]),
        reverse("badge-new"),
        reverse("badge-edit", args=[badge.pk]),
    ]
    expected = 200 if role in MAY else 403
    assert {url: client.get(url).status_code for url in urls} == dict.fromkeys(urls, expected)
    if role not in MAY:
        forged = client.post(
            reverse("engagement-kind-edit", args=[kind.pk]),
            {"name": "Forged", "points": "9999", "limit_period": "day", "reason": "x"},
        )
        assert forged.status_code == 403
        kind.refresh_from_db()
        assert kind.points == 10 and not AuditEntry.objects.exists()


def test_the_pages_have_no_inline_code(client, marketer):
    kind, challenge = EngagementKindFactory(), ChallengeFactory()
    for url in (
        reverse("engagement-kinds"),
        reverse("engagement-kind-edit", args=[kind.pk]),
        reverse("challenges"),
        reverse("challenge-edit", args=[challenge.pk]),
        reverse("badge-new"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert_no_unmarked_inline_code(response.content.decode(), None)


@pytest.mark.parametrize("n", [3, 40])
def test_the_lists_take_a_bounded_number_of_queries(
    client, marketer, django_assert_max_num_queries, n
):
    for i in range(n):
        kind = EngagementKindFactory()
        _event(kind)
        badge = BadgeFactory()
        challenge = ChallengeFactory(
            goal="event_count", event_kind=kind, badge=badge if i % 2 else None
        )
        ChallengeProgress.objects.create(
            challenge=challenge, member=MemberFactory(), window_start=timezone.now()
        )
    with django_assert_max_num_queries(8):
        assert client.get(reverse("engagement-kinds")).status_code == 200
    with django_assert_max_num_queries(9):
        assert client.get(reverse("challenges")).status_code == 200
