import uuid

import pytest

from ledger import services as ledger_services
from members import services as member_services
from members.models import Consent, Member
from members.selectors import consents_current
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

ENROL = {"email": "Anna@Example.nl", "first_name": "Anna", "last_name": "de Vries"}


def test_enrol_returns_the_member_with_card_and_zero_balance(api):
    response = api.post(
        "/api/v1/members/",
        {**ENROL, "consents": {"marketing_email": True, "sms": False}, "external_id": "C-1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    member = Member.objects.get(public_id=body["id"])
    assert member.email == "anna@example.nl"
    assert member.enrolled_channel == "till"
    assert body["card_number"] == member.cards.get().number
    assert body["balance"] == 0 and body["tier"] is None  # the programme has no tiers here
    consents = consents_current(member=member)
    assert consents["marketing_email"]["granted"] is True
    assert consents["sms"]["granted"] is False
    assert Consent.objects.filter(member=member).count() == 1


def test_enrol_answers_with_the_entry_tier_and_the_points_to_the_next(api):
    from tests.members.factories import ladder

    ladder()
    body = api.post("/api/v1/members/", ENROL, format="json").json()
    assert body["tier"] == "Bronze"
    detail = api.get(f"/api/v1/members/{body['id']}/").json()
    assert detail["tier"] == "Bronze" and detail["points_to_next_tier"] == 500


def test_enrol_validation_errors_name_the_fields(api):
    response = api.post("/api/v1/members/", {"first_name": "X"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert "email" in body["fields"]
    response = api.post(
        "/api/v1/members/", {**ENROL, "consents": {"telepathy": True}}, format="json"
    )
    assert response.status_code == 400
    assert "consents" in response.json()["fields"]


@pytest.mark.parametrize("field", ["balance", "tier", "status", "points", "id"])
def test_enrol_refuses_read_only_fields(api, field):
    response = api.post("/api/v1/members/", {**ENROL, field: 999}, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert not Member.objects.filter(email="anna@example.nl").exists()


def test_enrol_twice_with_the_same_email_is_a_conflict(api):
    assert api.post("/api/v1/members/", ENROL, format="json").status_code == 201
    response = api.post("/api/v1/members/", ENROL, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "email_taken"


def test_malformed_json_is_a_parse_error(api):
    response = api.post("/api/v1/members/", "{nope", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_get_member_shows_balance_tier_and_cards(api, member):
    response = api.get(f"/api/v1/members/{member.public_id}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(member.public_id)
    assert body["balance"] == 500 and body["available"] == 500
    assert body["pending_points"] == 0
    assert [c["number"] for c in body["cards"]] == [member.cards.get().number]
    assert set(body) >= {"email", "first_name", "last_name", "tier", "points_to_next_tier"}


@pytest.mark.parametrize("member_id", [uuid.uuid4(), "not-a-uuid", "12"])
def test_get_unknown_member_is_404(api, member_id):
    response = api.get(f"/api/v1/members/{member_id}/")
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"


def test_erased_member_is_not_found(api, member):
    Member.objects.filter(pk=member.pk).update(status=Member.Status.ERASED)
    for path in ("", "ledger/", "rewards/"):
        response = api.get(f"/api/v1/members/{member.public_id}/{path}")
        assert response.status_code == 404, path
        assert response.json()["code"] == "member_not_found"


def test_card_lookup_finds_the_member(api, member):
    number = member.cards.get().number
    response = api.get(f"/api/v1/cards/{number}/")
    assert response.status_code == 200
    assert response.json()["id"] == str(member.public_id)


def test_card_lookup_unknown_and_blocked(api, member):
    response = api.get("/api/v1/cards/1234567890/")
    assert response.status_code == 404
    assert response.json()["code"] == "card_not_found"
    card = member.cards.get()
    member_services.card_block(card=card, reason="lost")
    response = api.get(f"/api/v1/cards/{card.number}/")
    assert response.status_code == 409
    assert response.json()["code"] == "card_blocked"


def test_ledger_is_newest_first_and_cursor_paginated(api, member):
    for points in (1, 2, 3):
        ledger_services.points_earn(member=member, points=points, reason="test")
    response = api.get(f"/api/v1/members/{member.public_id}/ledger/?page_size=2")
    assert response.status_code == 200
    body = response.json()
    assert [e["points"] for e in body["results"]] == [3, 2]
    assert body["next"]
    second = api.get(body["next"]).json()
    assert [e["points"] for e in second["results"]] == [1, 500]
    assert second["next"] is None


def test_ledger_filters_by_kind(api, member):
    ledger_services.points_redeem(member=member, points=20, reason="test")
    response = api.get(f"/api/v1/members/{member.public_id}/ledger/?kind=redeem")
    assert [e["points"] for e in response.json()["results"]] == [-20]
    response = api.get(f"/api/v1/members/{member.public_id}/ledger/?kind=bogus")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "kind" in response.json()["fields"]


def test_rewards_lists_what_the_member_can_afford(api, member):
    from tests.rewards.factories import RewardFactory

    cheap = RewardFactory(points=100)
    RewardFactory(points=10_000)
    response = api.get(f"/api/v1/members/{member.public_id}/rewards/")
    assert response.status_code == 200
    assert [r["id"] for r in response.json()] == [cheap.pk]
    assert response.json()[0]["points"] == 100


def test_query_counts(api, member, django_assert_max_num_queries):
    with django_assert_max_num_queries(8):
        assert api.get(f"/api/v1/members/{member.public_id}/").status_code == 200
    with django_assert_max_num_queries(8):
        assert api.get(f"/api/v1/cards/{member.cards.get().number}/").status_code == 200
    for _ in range(30):
        ledger_services.points_earn(member=member, points=1, reason="test")
    with django_assert_max_num_queries(4):
        assert api.get(f"/api/v1/members/{member.public_id}/ledger/").status_code == 200
    with django_assert_max_num_queries(8):
        assert api.get(f"/api/v1/members/{member.public_id}/rewards/").status_code == 200
    # Inside the test's transaction every atomic() is a savepoint: 6 of these are SAVEPOINT or
    # RELEASE statements that a real request does not send.
    with django_assert_max_num_queries(22):
        assert api.post("/api/v1/members/", ENROL, format="json").status_code == 201


def test_member_visible_to_every_first_party_channel_with_members_read(make_channel, member):
    for kind in ("pos", "webshop", "app"):
        _channel, key = make_channel(kind, kind=kind, scopes=["members:read"])
        response = client_for(key).get(f"/api/v1/members/{member.public_id}/")
        assert response.status_code == 200
        assert response.json()["id"] == str(member.public_id)
        assert response.json()["email"] == member.email
    # A partner reaches only the members linked to it: tests/api/test_partners.py.


def test_enrol_profile_and_card_lookup_answer_one_member_shape(api):
    enrolled = api.post("/api/v1/members/", ENROL, format="json").json()
    profile = api.get(f"/api/v1/members/{enrolled['id']}/").json()
    by_card = api.get(f"/api/v1/cards/{enrolled['card_number']}/").json()
    assert profile == by_card
    assert {**enrolled, "card_number": None} == {**profile, "card_number": None}
    assert enrolled["card_number"] == profile["cards"][0]["number"]
