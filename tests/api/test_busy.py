"""A write the database rolls back as a deadlock's victim is retried; exhausted, it is 503 busy.

The failure is forced: the service raises what Django raises for psycopg's DeadlockDetected or
SerializationFailure (an OperationalError caused by it) a given number of times.
"""

import psycopg.errors
import pytest
from django.db import OperationalError

from ledger.models import Account, IdempotencyRecord
from loyalty_site.api import idempotency
from members import busy
from rewards import services
from rewards.models import Redemption

pytestmark = pytest.mark.django_db

PATH = "/api/v1/redemptions/"


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch):
    monkeypatch.setattr(busy, "RETRY_BASE_SECONDS", 0)


def database_error(cause: type[psycopg.Error]) -> OperationalError:
    error = OperationalError(str(cause.__name__))
    error.__cause__ = cause("forced")
    return error


def fail_first(monkeypatch, times: int, cause=psycopg.errors.DeadlockDetected) -> list:
    """Make redemption_redeem fail `times` times with `cause`, then work; returns the calls."""
    real, calls = services.redemption_redeem, []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) <= times:
            raise database_error(cause)
        return real(**kwargs)

    monkeypatch.setattr(services, "redemption_redeem", flaky)
    return calls


def body(member):
    return {"member": str(member.public_id), "points": 10}


@pytest.mark.parametrize(
    "cause", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure]
)
@pytest.mark.parametrize(
    "headers", [{"HTTP_IDEMPOTENCY_KEY": "retry-me"}, {}], ids=["key", "no key"]
)
def test_a_deadlocked_write_is_retried_and_succeeds(api, member, monkeypatch, cause, headers):
    calls = fail_first(monkeypatch, busy.WRITE_RETRIES, cause)
    response = api.post(PATH, body(member), format="json", **headers)
    assert response.status_code == 201, response.json()
    assert len(calls) == busy.WRITE_RETRIES + 1
    assert Redemption.objects.count() == 1
    assert Account.objects.get(member=member).balance == 490


@pytest.mark.parametrize(
    "headers", [{"HTTP_IDEMPOTENCY_KEY": "retry-me"}, {}], ids=["key", "no key"]
)
def test_a_write_that_keeps_deadlocking_is_503_busy_and_may_be_sent_again(
    api, member, monkeypatch, headers
):
    calls = fail_first(monkeypatch, 100)
    response = api.post(PATH, body(member), format="json", **headers)
    assert response.status_code == 503
    assert response.json() == {
        "code": "busy",
        "detail": str(busy.WriteBusy.default_detail),
        "fields": {},
    }
    assert response["Retry-After"] == str(idempotency.BUSY_RETRY_AFTER_SECONDS)
    assert len(calls) == busy.WRITE_RETRIES + 1
    assert Redemption.objects.count() == 0
    assert not IdempotencyRecord.objects.exists()  # the claim was released, not stored

    monkeypatch.undo()
    again = api.post(PATH, body(member), format="json", **headers)
    assert again.status_code == 201, again.json()
    assert "Idempotent-Replayed" not in again
    assert Redemption.objects.count() == 1


def test_another_database_error_is_not_retried(api, member, monkeypatch):
    calls = fail_first(monkeypatch, 1, cause=psycopg.errors.UndefinedTable)
    with pytest.raises(OperationalError):
        api.post(PATH, body(member), format="json", HTTP_IDEMPOTENCY_KEY="broken")
    assert len(calls) == 1
    assert not IdempotencyRecord.objects.filter(key="broken").exists()


def test_a_refusal_after_a_retry_is_stored_as_usual(api, member, monkeypatch):
    calls = fail_first(monkeypatch, 1)
    too_many = {"member": str(member.public_id), "points": 10_000}
    response = api.post(PATH, too_many, format="json", HTTP_IDEMPOTENCY_KEY="refused")
    assert (response.status_code, response.json()["code"]) == (409, "insufficient_points")
    assert len(calls) == 2
    again = api.post(PATH, too_many, format="json", HTTP_IDEMPOTENCY_KEY="refused")
    assert again["Idempotent-Replayed"] == "true"
    assert Account.objects.get(member=member).balance == 500
