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
