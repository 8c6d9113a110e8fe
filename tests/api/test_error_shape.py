"""Every error under /api/ has one body: `{"code", "detail", "fields"}`, where `fields` is an
object of lists of strings keyed by field path, whatever raised it (a service, a serializer,
the parser, Django's URL resolver or size limit, a throttle, the busy retry)."""

import json

import psycopg.errors
import pytest
from django.db import OperationalError

from loyalty_site.api.exceptions import error_fields
from loyalty_site.errors import ERROR_CODES, DomainError
from members import busy
from rewards import services as reward_services
from tests.api.factories import member_with

pytestmark = pytest.mark.django_db


def assert_error(response, status: int, code: str) -> dict:
    """The one shape of an error answer; returns its `fields`."""
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert set(body) == {"code", "detail", "fields"}
    assert body["code"] == code
    assert ERROR_CODES[code] == status  # the one list knows the code, with this status
    assert isinstance(body["detail"], str) and body["detail"]
    assert isinstance(body["fields"], dict)
    for name, messages in body["fields"].items():
        assert isinstance(name, str)
        assert isinstance(messages, list) and messages, (name, messages)
        assert all(isinstance(message, str) and message for message in messages), messages
    return body["fields"]


def purchase(member, **overrides):
    return {
        "member": str(member.public_id),
        "external_id": "E-1",
        "amount": "10.00",
        "currency": "EUR",
        **overrides,
    }


def test_a_domain_error_names_its_fields_as_lists(api):
    api.post("/api/v1/members/", {"email": "anna@example.nl"}, format="json")
    response = api.post("/api/v1/members/", {"email": "anna@example.nl"}, format="json")
    fields = assert_error(response, 409, "email_taken")
    assert list(fields) == ["email"]


def test_a_domain_error_raised_in_a_serializer_names_its_field_as_a_list(api, member):
    body = purchase(member, occurred_at="2001-01-01T00:00:00Z")
    fields = assert_error(
        api.post("/api/v1/purchases/", body, format="json"), 422, "purchase_too_late"
    )
    assert list(fields) == ["occurred_at"]


def test_serializer_errors_are_lists(api):
    response = api.post("/api/v1/members/", {"email": "not an address"}, format="json")
    assert list(assert_error(response, 400, "invalid")) == ["email"]


def test_an_object_level_refusal_is_named(api, member):
    body = purchase(member, card_number="6280001234567890")  # both member and card
    assert list(
        assert_error(api.post("/api/v1/purchases/", body, format="json"), 400, "invalid")
    ) == ["member"]


def test_nested_line_errors_are_flattened_to_paths(api, member):
    lines = [
        {"sku": "A", "amount": "5.00"},
        {"sku": "B", "amount": "-1", "quantity": 0},
        {"amount": "5.00", "colour": "red"},
    ]
    response = api.post("/api/v1/purchases/", purchase(member, lines=lines), format="json")
    fields = assert_error(response, 400, "invalid")
    # An unknown key is refused before the line's own fields are read (so no `lines.2.sku`).
    assert set(fields) == {"lines.1.amount", "lines.1.quantity", "lines.2.colour"}


def test_a_body_that_is_not_an_object_is_a_non_field_error(api):
    response = api.post("/api/v1/events/", [1, 2], format="json")
    assert list(assert_error(response, 400, "invalid")) == ["non_field_errors"]


def test_a_parse_error_has_the_shape(api):
    response = api.post("/api/v1/members/", data=b"{nope", content_type="application/json")
    assert assert_error(response, 400, "parse_error") == {}


@pytest.mark.parametrize("path", ["/api/v1/nothing/", "/api/v1/members/"])
def test_not_found_and_method_not_allowed_have_the_shape(api, path):
    if path.endswith("nothing/"):
        assert_error(api.get(path), 404, "not_found")
    else:
        assert_error(api.get(path), 405, "method_not_allowed")


def test_an_unknown_member_has_the_shape(api):
    assert_error(
        api.get("/api/v1/members/0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10/"), 404, "member_not_found"
    )


def test_a_body_too_large_has_the_shape(api, member, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = api.post("/api/v1/purchases/", purchase(member, store="x" * 200), format="json")
    assert_error(response, 413, "request_too_large")


def test_another_media_type_has_the_shape(api):
    response = api.post("/api/v1/members/", data="email=a@b.nl", content_type="text/plain")
    assert_error(response, 415, "unsupported_media_type")


def test_no_key_and_a_throttle_have_the_shape(make_channel, member):
    from tests.api.conftest import client_for

    assert_error(
        client_for(None).get(f"/api/v1/members/{member.public_id}/"), 401, "not_authenticated"
    )
    _channel, key = make_channel("slow", rate="1/min")
    slow = client_for(key)
    slow.get(f"/api/v1/members/{member.public_id}/")
    assert_error(slow.get(f"/api/v1/members/{member.public_id}/"), 429, "throttled")


def test_busy_has_the_shape(api, monkeypatch):
    monkeypatch.setattr(busy, "RETRY_BASE_SECONDS", 0)

    def deadlocked(**kwargs):
        error = OperationalError("deadlock")
        error.__cause__ = psycopg.errors.DeadlockDetected("forced")
        raise error

    monkeypatch.setattr(reward_services, "redemption_redeem", deadlocked)
    who = member_with(points=100)
    response = api.post(
        "/api/v1/redemptions/", {"member": str(who.public_id), "points": 10}, format="json"
    )
    assert_error(response, 503, "busy")


@pytest.mark.parametrize("value", ["%00", "62800%0A", "%7F", "%C2%85"])
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/cards/{}/",
        "/api/v1/members/{}/",
        "/api/v1/members/{}/ledger/",
        "/api/v1/members/{}/rewards/",
    ],
)
def test_a_control_character_in_a_path_parameter_is_refused(api, path, value):
    fields = assert_error(api.get(path.format(value)), 400, "invalid_path_parameter")
    assert len(fields) == 1


@pytest.mark.parametrize(
    "path", ["/api/v1/redemptions/%00/confirm/", "/api/v1/purchases/1%0D/returns/"]
)
def test_a_control_character_in_a_write_path_is_refused(api, path):
    assert_error(api.post(path, {}, format="json"), 400, "invalid_path_parameter")


def test_a_control_character_in_a_path_is_refused_only_after_the_key_check(member):
    from tests.api.conftest import client_for

    assert_error(client_for(None).get("/api/v1/cards/%00/"), 401, "not_authenticated")


@pytest.mark.parametrize(
    ("errors", "flat"),
    [
        ({"email": "taken"}, {"email": ["taken"]}),
        ({"email": ["a", "b"]}, {"email": ["a", "b"]}),
        (["whole body"], {"non_field_errors": ["whole body"]}),
        ("whole body", {"non_field_errors": ["whole body"]}),
        ({"lines": [{}, {"amount": ["too much"]}]}, {"lines.1.amount": ["too much"]}),
        ({"lines": {"0": {"sku": ["required"]}}}, {"lines.0.sku": ["required"]}),
        ({"consents": {"sms": ["not a boolean"]}}, {"consents.sms": ["not a boolean"]}),
        ({"a": [], "b": ""}, {}),
        (None, {}),
    ],
)
def test_error_fields_flattens_every_shape(errors, flat):
    assert error_fields(errors) == flat


def test_a_domain_error_with_a_list_of_messages_keeps_them():
    from loyalty_site.api.exceptions import api_exception_handler

    response = api_exception_handler(DomainError(fields={"points": ["a", "b"]}), {})
    assert response.data["fields"] == {"points": ["a", "b"]}
