"""The ledger admin's adjustment form: the form checks input, save_model calls the service once.

These belong in tests/ledger/test_admin.py; they live here while that folder is restructured.
"""

from unittest import mock

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.messages import get_messages
from django.urls import reverse

from ledger import services
from ledger.models import Account, AdjustmentRequest, Entry
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

ADD = reverse("admin:ledger_adjustmentrequest_add")
CHANGELIST = reverse("admin:ledger_adjustmentrequest_changelist")


@pytest.fixture
def clerk(client, staff_user, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    user = staff_user("Customer service")
    client.force_login(user)
    return user


@pytest.fixture
def adjust():
    """The service, spied on: each test counts how often the admin called it."""
    with mock.patch.object(services, "points_adjust", wraps=services.points_adjust) as spy:
        yield spy


def _texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_refused_debit_is_a_form_error_and_writes_nothing(client, clerk, adjust):
    member = MemberFactory()
    services.points_earn(member=member, points=10, reference="till-1")
    response = client.post(ADD, {"member": member.email, "points": -11, "reason": "typo"})
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.non_field_errors() == ["The member does not have enough points."]
    # The page keeps what was typed, so the clerk can correct it.
    assert form.data["reason"] == "typo"
    assert adjust.call_count == 1
    assert list(Entry.objects.values_list("kind", "amount")) == [("earn", 10)]
    assert Account.objects.get(member=member).balance == 10
    assert not AdjustmentRequest.objects.exists()
    assert not LogEntry.objects.exists()
    assert _texts(response) == []


def test_a_small_adjustment_posts_exactly_one_entry(client, clerk, adjust):
    member = MemberFactory()
    response = client.post(ADD, {"member": member.email, "points": 25, "reason": "goodwill"})
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert adjust.call_count == 1
    entry = Entry.objects.get()
    assert (entry.kind, entry.amount, entry.reason, entry.actor) == (
        "adjust",
        25,
        "goodwill",
        clerk,
    )
    assert Account.objects.get(member=member).balance == 25
    assert not AdjustmentRequest.objects.exists()
    assert _texts(response) == ["+25 points posted at once (within the approval threshold)."]


def test_a_large_adjustment_queues_exactly_one_request(client, clerk, adjust):
    member = MemberFactory()
    response = client.post(ADD, {"member": member.email, "points": 500, "reason": "lost till"})
    assert response.status_code == 302
    assert adjust.call_count == 1
    request = AdjustmentRequest.objects.get()
    assert (request.points, request.reason, request.requested_by, request.status) == (
        500,
        "lost till",
        clerk,
        AdjustmentRequest.Status.PENDING,
    )
    assert not Entry.objects.exists()
    assert LogEntry.objects.get().object_id == str(request.pk)
    assert _texts(response) == ["Adjustment of +500 points waits for a second person's approval."]


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"points": 0, "reason": "x"}, "points", "whole number other than zero"),
        ({"points": 5, "reason": "   "}, "reason", "required"),
        ({"points": 5, "reason": "x", "member": "nobody@example.nl"}, "member", "exactly one"),
    ],
)
def test_bad_input_is_refused_by_the_form_without_calling_the_service(
    client, clerk, adjust, data, field, message
):
    member = MemberFactory()
    response = client.post(ADD, {"member": member.email, **data})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert list(errors) == [field] and message in errors[field][0]
    assert adjust.call_count == 0
    assert not Entry.objects.exists() and not AdjustmentRequest.objects.exists()


def test_approving_reports_each_refused_row_and_counts_the_rest(client, staff_user, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    finance = staff_user("Finance")
    member = MemberFactory(first_name="Ann", last_name="Smit")
    other = staff_user("Customer service")
    theirs = services.points_adjust(member=member, points=300, reason="a", actor=other)
    own = services.points_adjust(member=member, points=400, reason="b", actor=finance)
    client.force_login(finance)
    response = client.post(
        CHANGELIST, {"action": "approve", "_selected_action": [theirs.pk, own.pk]}
    )
    assert response.status_code == 302
    assert sorted(_texts(response)) == [
        "1 adjustment approved.",
        f"{member}: A second staff member must approve this adjustment; not the requester.",
    ]
    statuses = dict(AdjustmentRequest.objects.values_list("pk", "status"))
    assert statuses == {theirs.pk: "approved", own.pk: "pending"}
    assert Account.objects.get(member=member).balance == 300


def test_an_adjustment_above_the_maximum_is_a_form_error_and_writes_nothing(
    client, clerk, adjust, settings
):
    settings.LOYALTY_ADJUSTMENT_MAX_POINTS = 5000
    member = MemberFactory()
    for points in (5001, -5001, 2**63):
        response = client.post(ADD, {"member": member.email, "points": points, "reason": "x"})
        assert response.status_code == 200
        assert response.context["adminform"].form.errors["points"] in (
            ["An adjustment can move at most 5000 points."],
            ["Ensure this value is less than or equal to 9223372036854775807."],
        )
    assert adjust.call_count == 0
    assert not AdjustmentRequest.objects.exists() and not Entry.objects.exists()


def test_the_service_refuses_an_adjustment_above_the_maximum(clerk, settings):
    from ledger.errors import InvalidPoints

    settings.LOYALTY_ADJUSTMENT_MAX_POINTS = 5000
    member = MemberFactory()
    with pytest.raises(InvalidPoints, match="at most 5000 points"):
        services.points_adjust(member=member, points=-5001, reason="typo", actor=clerk)
    assert not AdjustmentRequest.objects.exists() and not Entry.objects.exists()
