"""An admin write that loses a deadlock is run again; one that loses every time is a translated
"busy, try again" on the page, never a 500 (issue 12, point 2; ``members.busy``).

The failure is forced: the service raises what Django raises for psycopg's DeadlockDetected (an
OperationalError caused by it) a given number of times, then works.
"""

import psycopg.errors
import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError
from django.urls import reverse
from django.utils import translation

from ledger import services
from ledger.models import Account, AdjustmentRequest, Entry
from members import busy
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:ledger_adjustmentrequest_add")
CHANGELIST = reverse("admin:ledger_adjustmentrequest_changelist")
TOO_MANY = busy.WRITE_RETRIES + 3  # the bound, and then twice more


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch):
    monkeypatch.setattr(busy, "RETRY_BASE_SECONDS", 0)


def deadlock() -> OperationalError:
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("forced")
    return error


def fail_first(monkeypatch, name: str, times: int) -> list:
    """Make ``ledger.services.<name>`` deadlock ``times`` times, then work; returns the calls."""
    real, calls = getattr(services, name), []

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) <= times:
            raise deadlock()
        return real(**kwargs)

    monkeypatch.setattr(services, name, flaky)
    return calls


@pytest.fixture
def clerk(client, staff_user, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    user = staff_user("Customer service")
    client.force_login(user)
    return user


def _texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_an_adjustment_that_deadlocks_once_is_posted_once(client, clerk, monkeypatch):
    calls = fail_first(monkeypatch, "points_adjust", 1)
    member = MemberFactory()
    response = client.post(ADD, {"member": member.email, "points": 25, "reason": "goodwill"})
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert len(calls) == 2
    assert list(Entry.objects.values_list("kind", "amount")) == [("adjust", 25)]
    assert Account.objects.get(member=member).balance == 25


@pytest.mark.parametrize("language", ["en", "nl"])
def test_an_adjustment_that_keeps_deadlocking_is_a_busy_form_error(
    client, clerk, monkeypatch, language
):
    calls = fail_first(monkeypatch, "points_adjust", TOO_MANY)
    member = MemberFactory()
    response = client.post(
        ADD,
        {"member": member.email, "points": 25, "reason": "goodwill"},
        HTTP_ACCEPT_LANGUAGE=language,
    )
    assert response.status_code == 200
    assert len(calls) == busy.WRITE_RETRIES + 1  # bounded
    form = response.context["adminform"].form
    with translation.override(language):
        expected = str(busy.WriteBusy.default_detail)
    assert form.non_field_errors() == [expected]
    assert form.data["reason"] == "goodwill"  # kept, to send again
    assert not Entry.objects.exists() and not AdjustmentRequest.objects.exists()


def _pending_request(member, clerk):
    return services.points_adjust(member=member, points=500, reason="lost till", actor=clerk)


def test_an_approval_that_deadlocks_once_posts_once(client, staff_user, clerk, monkeypatch):
    request = _pending_request(MemberFactory(), clerk)
    client.force_login(staff_user("Finance"))
    calls = fail_first(monkeypatch, "adjustment_approve", 1)
    response = client.post(CHANGELIST, {"action": "approve", "_selected_action": [request.pk]})
    assert response.status_code == 302
    assert len(calls) == 2
    request.refresh_from_db()
    assert request.status == "approved"
    assert Entry.objects.filter(kind="adjust", amount=500).count() == 1
    assert _texts(response) == ["1 adjustment approved."]


def test_an_approval_that_keeps_deadlocking_says_busy_and_leaves_it_pending(
    client, staff_user, clerk, monkeypatch
):
    member = MemberFactory()
    request = _pending_request(member, clerk)
    client.force_login(staff_user("Finance"))
    calls = fail_first(monkeypatch, "adjustment_approve", TOO_MANY)
    response = client.post(CHANGELIST, {"action": "approve", "_selected_action": [request.pk]})
    assert response.status_code == 302
    assert len(calls) == busy.WRITE_RETRIES + 1
    assert _texts(response) == [f"{member}: {busy.WriteBusy.default_detail}"]
    request.refresh_from_db()
    assert request.status == "pending"
    assert not Entry.objects.exists()


def test_another_database_error_is_not_taken_for_busy():
    calls = []

    def broken():
        calls.append(1)
        error = OperationalError("no such table")
        error.__cause__ = psycopg.errors.UndefinedTable("forced")
        raise error

    with pytest.raises(OperationalError):
        busy.busy_retry(broken)
    assert len(calls) == 1
