import json
import threading
from decimal import Decimal

import pytest
from django.db import connection

from ledger.models import Account, IdempotencyRecord, Purchase
from members.models import Member
from rewards.models import Redemption
from tests.api.conftest import client_for
from tests.api.factories import member_with
from tests.campaigns.factories import EarningRuleFactory, EngagementKindFactory

pytestmark = pytest.mark.django_db


def writes(member):
    """Every write endpoint: (path, body) for this member (returns use a fresh purchase)."""
    return {
        "enrol": ("/api/v1/members/", {"email": "new@example.nl"}),
        "purchase": (
            "/api/v1/purchases/",
            {"member": str(member.public_id), "external_id": "I-1", "amount": "10.00"},
        ),
        "event": ("/api/v1/events/", {"kind": "review", "member": str(member.public_id)}),
        "redeem": ("/api/v1/redemptions/", {"member": str(member.public_id), "points": 10}),
    }


def state(member):
    return (
        Member.objects.count(),
        Purchase.objects.count(),
        Redemption.objects.count(),
        Account.objects.get(member=member).balance,
        member.account.entries.count(),
    )


@pytest.fixture(autouse=True)
def programme(db):
    EarningRuleFactory(rate=Decimal(1))
    EngagementKindFactory(code="review", points=5)


@pytest.mark.parametrize("name", ["enrol", "purchase", "event", "redeem"])
def test_retry_with_the_same_key_replays_without_writing(api, member, name):
    path, body = writes(member)[name]
    first = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{name}")
    assert first.status_code == 201, first.json()
    before = state(member)
    again = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{name}")
    assert again.status_code == first.status_code
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert state(member) == before


@pytest.mark.parametrize("name", ["enrol", "purchase", "event", "redeem"])
def test_same_key_with_another_body_is_409(api, member, name):
    path, body = writes(member)[name]
    assert api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    before = state(member)
    changed = {**body, "email": "other@example.nl"} if name == "enrol" else {**body}
    if name == "purchase":
        changed["amount"] = "11.00"
    elif name == "event":
        changed["reference"] = "other"
    elif name == "redeem":
        changed["points"] = 11
    response = api.post(path, changed, format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_conflict"
    assert state(member) == before


def test_the_same_key_on_another_endpoint_is_a_conflict(api, member):
    path, body = writes(member)["redeem"]
    assert api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code == 201
    response = api.post(
        f"/api/v1/redemptions/{Redemption.objects.get().pk}/cancel/", HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 409
    # Not the refusal to cancel a confirmed redemption: the key is what is refused.
    assert response.json()["code"] == "idempotency_conflict"
    assert Redemption.objects.get().status == "confirmed"


@pytest.mark.parametrize(("verb", "ends"), [("confirm", "confirmed"), ("cancel", "cancelled")])
def test_confirm_and_cancel_replay_a_retry_and_refuse_another_body(api, member, verb, ends):
    reserved = api.post(
        "/api/v1/redemptions/",
        {"member": str(member.public_id), "points": 10, "reserve": True},
        format="json",
    ).json()
    path = f"/api/v1/redemptions/{reserved['id']}/{verb}/"
    first = api.post(path, HTTP_IDEMPOTENCY_KEY=f"k-{verb}")
    assert first.status_code == 200, first.json()
    assert first.json()["status"] == ends
    assert "Idempotent-Replayed" not in first
    before = state(member)
    again = api.post(path, HTTP_IDEMPOTENCY_KEY=f"k-{verb}")
    assert (again.status_code, again.json()) == (200, first.json())
    assert again["Idempotent-Replayed"] == "true"
    other = api.post(path, {"reason": "other"}, format="json", HTTP_IDEMPOTENCY_KEY=f"k-{verb}")
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert state(member) == before
    assert Redemption.objects.get(pk=reserved["id"]).status == ends


def test_keys_are_per_channel(make_channel, member):
    path, body = writes(member)["redeem"]
    _a, key_a = make_channel("a")
    _b, key_b = make_channel("b")
    assert (
        client_for(key_a).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
        == 201
    )
    assert (
        client_for(key_b).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k").status_code
        == 201
    )
    assert Redemption.objects.count() == 2


def test_a_refusal_is_stored_and_replayed(api, member):
    body = {"member": str(member.public_id), "points": 10_000}
    first = api.post("/api/v1/redemptions/", body, format="json", HTTP_IDEMPOTENCY_KEY="short")
    assert first.status_code == 409
    again = api.post("/api/v1/redemptions/", body, format="json", HTTP_IDEMPOTENCY_KEY="short")
    assert (again.status_code, again.json()) == (409, first.json())
    assert again["Idempotent-Replayed"] == "true"


def test_an_unexpected_error_releases_the_key(api, member, monkeypatch):
    from rewards import services

    def boom(**kwargs):
        raise RuntimeError("database fell over")

    monkeypatch.setattr(services, "redemption_redeem", boom)
    path, body = writes(member)["redeem"]
    with pytest.raises(RuntimeError):
        api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="crash")
    assert not IdempotencyRecord.objects.filter(key="crash").exists()
    monkeypatch.undo()
    assert api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="crash").status_code == 201


def test_a_key_in_use_gets_409_in_progress_until_it_is_stale(api, member, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.LOYALTY_IDEMPOTENCY_WAIT_SECONDS = 0
    path, body = writes(member)["redeem"]
    assert api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="busy").status_code == 201
    # As if the first request had claimed the key and were still running (or had crashed).
    Redemption.objects.all().delete()
    IdempotencyRecord.objects.filter(key="busy").update(response_status=None, response_body=None)
    response = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_in_progress"
    IdempotencyRecord.objects.filter(key="busy").update(
        created_at=timezone.now()
        - timedelta(seconds=settings.LOYALTY_IDEMPOTENCY_STALE_SECONDS + 1)
    )
    response = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="busy")
    assert response.status_code == 201
    assert Redemption.objects.count() == 1


def test_a_long_key_is_refused(api, member):
    path, body = writes(member)["redeem"]
    response = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="k" * 256)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["fields"]


def test_purge_task_removes_old_records(settings):
    from datetime import timedelta

    from django.utils import timezone

    from loyalty_site.tasks import idempotency_records_purge

    old = IdempotencyRecord.objects.create(channel="c", key="old", fingerprint="f")
    IdempotencyRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(hours=settings.LOYALTY_IDEMPOTENCY_TTL_HOURS + 1)
    )
    IdempotencyRecord.objects.create(channel="c", key="new", fingerprint="f")
    idempotency_records_purge.delay()
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


def _race(path, body, key, n=6):
    """n threads send the same request with the same key at once; returns their responses."""
    barrier = threading.Barrier(n)
    responses = []

    def send():
        try:
            barrier.wait()
            responses.append(
                client_for(key).post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="same")
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("name", ["enrol", "purchase", "redeem"])
def test_concurrent_requests_with_the_same_key_write_once(make_channel, name):
    member = member_with(points=500)
    _channel, key = make_channel("race")
    path, body = writes(member)[name]
    responses = _race(path, body, key)
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    created = [r for r in responses if r.status_code == 201]
    assert created and all(r.json() == created[0].json() for r in created)
    for other in responses:
        if other.status_code == 409:
            assert other.json()["code"] == "idempotency_in_progress"
    counts = {
        "enrol": Member.objects.filter(email="new@example.nl").count(),
        "purchase": Purchase.objects.count(),
        "redeem": Redemption.objects.count(),
    }
    assert counts[name] == 1
    assert Account.objects.get(member=member).balance == {"purchase": 510, "redeem": 490}.get(
        name, 500
    )


def test_a_huge_refusal_is_stored_as_a_short_marker_and_replayed_with_its_status(api, member):
    from loyalty_site.api.idempotency import MAX_STORED_ANSWER_BYTES

    body = {
        "member": str(member.public_id),
        "external_id": "huge",
        "amount": "10.00",
        "lines": [{"quantity": 0, "note": "x" * 20} for _ in range(500)],
    }
    path = "/api/v1/purchases/"
    first = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="huge")
    assert first.status_code == 400
    assert len(first.content) > MAX_STORED_ANSWER_BYTES  # the first answer itself is whole
    assert len([name for name in first.json()["fields"] if name.startswith("lines.")]) == 500

    record = IdempotencyRecord.objects.get(key="huge")
    assert len(json.dumps(record.response_body)) < 1024
    again = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="huge")
    assert again.status_code == 400
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["code"] == "invalid"
    assert again.json()["fields"] == {}
    assert "too large to keep" in again.json()["detail"]
    assert Purchase.objects.count() == 0


def test_a_large_success_is_replayed_as_answer_not_kept(api, member, monkeypatch):
    from loyalty_site.api import idempotency

    monkeypatch.setattr(idempotency, "MAX_STORED_ANSWER_BYTES", 64)
    path, body = writes(member)["redeem"]
    first = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="big")
    assert first.status_code == 201
    assert first.json()["id"]
    again = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="big")
    assert again.status_code == 201
    assert again.json()["code"] == idempotency.ANSWER_NOT_KEPT
    assert Redemption.objects.count() == 1


def test_an_answer_within_the_cap_is_stored_whole(api, member):
    path, body = writes(member)["redeem"]
    first = api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY="small")
    assert IdempotencyRecord.objects.get(key="small").response_body == first.json()
