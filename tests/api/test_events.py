import pytest

from campaigns.models import EngagementEvent
from tests.campaigns.factories import EngagementKindFactory

pytestmark = pytest.mark.django_db


def test_event_earns_its_points(api, member):
    EngagementKindFactory(code="review", points=25)
    response = api.post(
        "/api/v1/events/",
        {"kind": "review", "member": str(member.public_id), "reference": "r-1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["points_earned"] == 25 and body["balance"] == 525
    assert body["status"] == "credited"
    # The same reference again is a duplicate, not a second credit.
    response = api.post(
        "/api/v1/events/",
        {"kind": "review", "member": str(member.public_id), "reference": "r-1"},
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "duplicate_event"
    event = EngagementEvent.objects.get()
    assert (event.pk, event.member, event.points) == (body["id"], member, 25)


def test_unknown_kind_and_member(api, member):
    response = api.post(
        "/api/v1/events/", {"kind": "nope", "member": str(member.public_id)}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "unknown_event_kind"
    response = api.post(
        "/api/v1/events/",
        {"kind": "nope", "member": "7c1d1c59-0000-4000-8000-000000000000"},
        format="json",
    )
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"
    assert not EngagementEvent.objects.exists()


def test_event_validation(api, member):
    response = api.post("/api/v1/events/", {"member": str(member.public_id)}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "kind" in response.json()["fields"]


def test_event_query_count(api, member, django_assert_max_num_queries):
    EngagementKindFactory(code="survey", points=5)
    with django_assert_max_num_queries(30):
        response = api.post(
            "/api/v1/events/", {"kind": "survey", "member": str(member.public_id)}, format="json"
        )
    assert response.status_code == 201


# --- NPS: the score of a survey answer ---


@pytest.fixture
def survey(db):
    return EngagementKindFactory(code="survey", points=25, collects_nps=True)


@pytest.mark.parametrize("score", [11, -1, "ten", None])
def test_the_api_refuses_a_score_outside_0_to_10_naming_the_field(api, member, survey, score):
    body = {"kind": "survey", "member": str(member.public_id), "score": score}
    response = api.post("/api/v1/events/", body, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["code"] == "invalid"
    assert list(response.json()["fields"]) == ["score"]
    assert not EngagementEvent.objects.exists()


def test_the_api_records_the_score_and_names_a_missing_one(api, member, survey):
    member_id = str(member.public_id)
    response = api.post("/api/v1/events/", {"kind": "survey", "member": member_id}, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "score_required"
    assert list(response.json()["fields"]) == ["score"]

    body = {"kind": "survey", "member": member_id, "reference": "q4", "score": 10}
    response = api.post("/api/v1/events/", body, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["score"] == 10 and response.json()["points_earned"] == 25
    member.refresh_from_db()
    assert member.nps_score == 10 and member.nps_at is not None

    EngagementKindFactory(code="review")
    body = {"kind": "review", "member": member_id, "score": 10}
    response = api.post("/api/v1/events/", body, format="json")
    assert response.status_code == 422
    assert response.json()["code"] == "score_not_collected"
