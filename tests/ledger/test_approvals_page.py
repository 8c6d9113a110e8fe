"""/approvals/: the four-eyes queue of staff adjustments (issue 14, item 2)."""

from datetime import timedelta

import psycopg.errors
import pytest
from django.contrib.messages import get_messages
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from ledger import errors, selectors, services
from ledger.models import Account, AdjustmentRequest, Entry
from members import busy
from tests.factories import MemberFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

URL = reverse("approvals")
ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]


def approve_url(request) -> str:
    return reverse("approval-approve", args=[request.pk])


def reject_url(request) -> str:
    return reverse("approval-reject", args=[request.pk])


@pytest.fixture
def clerk(staff_user, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 1_000_000
    return staff_user("Customer service")


@pytest.fixture
def finance(client, staff_user):
    user = staff_user("Finance")
    client.force_login(user)
    return user


def waiting(member, clerk, points=500, *, reason="lost till receipt", ago=timedelta(0)):
    request = services.points_adjust(
        member=member, points=points, reason=reason, actor=clerk, at=timezone.now() - ago
    )
    assert isinstance(request, AdjustmentRequest)
    return request


def texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def shown(response) -> list[str]:
    """The messages of a followed redirect: shown on the queue page, and so used up."""
    assert response.redirect_chain[-1][0].startswith(URL)
    return [str(message) for message in response.context["messages"]]


def test_the_queue_lists_waiting_requests_oldest_first_with_the_members_balance(
    client, clerk, finance
):
    anna, bob = MemberFactory(first_name="Anna"), MemberFactory(first_name="Bob")
    services.points_earn(member=anna, points=1234, reference="till-1")
    newer = waiting(anna, clerk, 700, ago=timedelta(hours=1))
    older = waiting(bob, clerk, 300, reason="birthday voucher missed", ago=timedelta(hours=5))
    services.adjustment_reject(request=waiting(bob, clerk, 200), actor=finance, reason="dup")

    response = client.get(URL)

    assert response.status_code == 200
    assert list(response.context["page"]) == [older, newer]
    assert response.context["waiting"] == 2
    html = response.content.decode()
    assert "2 waiting" in html
    row = html[html.index(f'id="adjustment-{newer.pk}"') :]
    assert "1,234" in row.split("</tr>")[0]  # balance and available
    assert "+700" in row and "lost till receipt" in row and clerk.get_full_name() in row
    assert "birthday voucher missed" in html
    assert approve_url(newer) in html and reject_url(newer) in html
    # No member page yet at /members/<id>/: the member links to the admin's member.
    assert reverse("member-page", args=[anna.pk]) in html
    assert_no_unmarked_inline_code(html, None)


def test_the_decided_tab_shows_the_latest_decisions_first(client, clerk, finance):
    member = MemberFactory()
    services.points_earn(member=member, points=50, reference="till-1")
    first = waiting(member, clerk, 400)
    services.adjustment_approve(request=first, actor=finance)
    second = waiting(member, clerk, -300)
    services.adjustment_reject(request=second, actor=finance, reason="goodwill already given")
    waiting(member, clerk, 600)

    response = client.get(URL, {"show": "decided"})

    assert list(response.context["page"]) == [second, first]
    html = response.content.decode()
    assert "goodwill already given" in html and "Approved" in html and "Rejected" in html
    assert_no_unmarked_inline_code(html, None)


def test_approving_posts_the_points_and_records_who_decided(client, clerk, finance):
    member = MemberFactory()
    services.points_earn(member=member, points=100, reference="till-1")
    request = waiting(member, clerk, 500)

    response = client.post(approve_url(request))

    assert response.status_code == 302 and response["Location"] == URL
    request.refresh_from_db()
    assert request.status == AdjustmentRequest.Status.APPROVED
    assert request.decided_by == finance and request.decided_at is not None
    entry = request.entry
    assert (entry.kind, entry.amount, entry.balance_after) == ("adjust", 500, 600)
    # The entry keeps the requester as its actor and the request's reason.
    assert entry.actor == clerk and entry.reason == "lost till receipt"
    assert Account.objects.get(member=member).balance == 600
    assert texts(response) == [
        f"{member}: +500 points approved and posted; the balance is now 600."
    ]


def test_rejecting_records_the_reason_and_posts_nothing(client, clerk, finance):
    member = MemberFactory()
    request = waiting(member, clerk, 500)

    response = client.post(reject_url(request), {"reason": "  no receipt shown  "})

    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == AdjustmentRequest.Status.REJECTED
    assert (request.decided_by, request.decision_reason) == (finance, "no receipt shown")
    assert not Entry.objects.exists()
    assert texts(response) == [
        f"{member}: the adjustment of +500 points was rejected; nothing was posted."
    ]


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_rejection_without_a_reason_is_a_form_error_and_changes_nothing(
    client, clerk, finance, reason
):
    request = waiting(MemberFactory(), clerk)

    response = client.post(reject_url(request), {"reason": reason})

    assert response.status_code == 200
    assert response.context["rejecting"] == request.pk
    assert "Say why you reject this adjustment." in response.content.decode()
    request.refresh_from_db()
    assert request.status == AdjustmentRequest.Status.PENDING


def test_nobody_approves_their_own_request(client, staff_user, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    admin = staff_user("Administrator")  # may request and approve
    client.force_login(admin)
    member = MemberFactory()
    request = waiting(member, admin)

    page = client.get(URL).content.decode()
    response = client.post(approve_url(request), follow=True)

    # The page offers no buttons on one's own request and says why; the service refuses anyway.
    assert approve_url(request) not in page
    assert str(errors.SelfApproval.default_detail) in page
    assert shown(response) == [f"{member}: {errors.SelfApproval.default_detail}"]
    request.refresh_from_db()
    assert request.status == AdjustmentRequest.Status.PENDING
    assert not Entry.objects.exists()
    rejected = client.post(reject_url(request), {"reason": "mine"}, follow=True)
    assert shown(rejected) == [f"{member}: {errors.SelfApproval.default_detail}"]


@pytest.mark.parametrize("first", ["approve", "reject"])
def test_a_request_decided_in_another_tab_says_so_and_changes_nothing(
    client, clerk, finance, staff_user, first
):
    member = MemberFactory()
    request = waiting(member, clerk)
    colleague = staff_user("Finance")
    if first == "approve":
        services.adjustment_approve(request=request, actor=colleague)
    else:
        services.adjustment_reject(request=request, actor=colleague, reason="dup")
    before = AdjustmentRequest.objects.values().get(pk=request.pk)

    approved = client.post(approve_url(request), follow=True)
    rejected = client.post(reject_url(request), {"reason": "too late"}, follow=True)

    message = f"{member}: {errors.RequestNotPending.default_detail}"
    assert shown(approved) == [message] and shown(rejected) == [message]
    assert AdjustmentRequest.objects.values().get(pk=request.pk) == before
    assert Entry.objects.filter(kind="adjust").count() == (1 if first == "approve" else 0)


def test_a_debit_the_member_can_no_longer_cover_is_refused_on_approval(client, clerk, finance):
    member = MemberFactory()
    services.points_earn(member=member, points=800, reference="till-1")
    request = waiting(member, clerk, -700)
    services.points_redeem(member=member, points=500, channel="pos", reference="r-1")

    response = client.post(approve_url(request))

    assert texts(response) == [f"{member}: {errors.InsufficientPoints.default_detail}"]
    request.refresh_from_db()
    assert request.status == AdjustmentRequest.Status.PENDING
    assert Account.objects.get(member=member).balance == 300


def test_an_approval_that_keeps_deadlocking_says_busy_and_leaves_it_pending(
    client, clerk, finance, monkeypatch
):
    monkeypatch.setattr(busy, "RETRY_BASE_SECONDS", 0)
    member = MemberFactory()
    request = waiting(member, clerk)
    calls = []

    def deadlocked(**kwargs):
        calls.append(kwargs)
        error = OperationalError("deadlock detected")
        error.__cause__ = psycopg.errors.DeadlockDetected("forced")
        raise error

    monkeypatch.setattr(services, "adjustment_approve", deadlocked)

    response = client.post(approve_url(request))

    assert response.status_code == 302
    assert len(calls) == busy.WRITE_RETRIES + 1
    assert texts(response) == [f"{member}: {busy.WriteBusy.default_detail}"]
    request.refresh_from_db()
    assert request.status == AdjustmentRequest.Status.PENDING


def test_customer_service_follows_its_own_requests_read_only(client, clerk, staff_user):
    other = staff_user("Customer service")
    mine = waiting(MemberFactory(), clerk)
    waiting(MemberFactory(), other)
    client.force_login(clerk)

    response = client.get(URL)

    assert response.status_code == 200
    assert list(response.context["page"]) == [mine]
    html = response.content.decode()
    assert "My adjustment requests" in html
    assert approve_url(mine) not in html and reject_url(mine) not in html
    assert reverse("admin:ledger_adjustmentrequest_add") in html
    assert client.post(approve_url(mine)).status_code == 403
    assert client.post(reject_url(mine), {"reason": "x"}).status_code == 403
    mine.refresh_from_db()
    assert mine.status == AdjustmentRequest.Status.PENDING


@pytest.mark.parametrize("role", ROLES)
def test_who_may_see_and_decide(client, clerk, staff_user, role):
    request = waiting(MemberFactory(), clerk)
    client.force_login(staff_user(role))

    seen = client.get(URL).status_code
    decided = client.post(approve_url(request)).status_code

    assert seen == (403 if role == "Marketing" else 200)
    assert decided == (302 if role in ("Finance", "Administrator") else 403)
    request.refresh_from_db()
    assert request.status == ("approved" if role in ("Finance", "Administrator") else "pending")


def test_signed_out_users_go_to_the_login_page(client):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_the_page_takes_only_get_and_the_actions_only_post(client, clerk, finance):
    request = waiting(MemberFactory(), clerk)
    assert client.post(URL).status_code == 405
    assert client.get(approve_url(request)).status_code == 405
    assert client.get(reject_url(request)).status_code == 405


def test_an_unknown_request_is_404(client, finance):
    assert client.post(reverse("approval-approve", args=[999999])).status_code == 404


@pytest.mark.parametrize("rows", [3, 60])
@pytest.mark.parametrize("show", ["", "decided"])
def test_the_page_answers_with_a_bounded_number_of_queries(
    client, clerk, finance, staff_user, django_assert_max_num_queries, rows, show
):
    clerks = [clerk, staff_user("Customer service")]
    for i in range(rows):
        member = MemberFactory()
        services.points_earn(member=member, points=10, reference=f"till-{i}")
        request = waiting(member, clerks[i % 2], 200 + i)
        if show and i % 2:
            services.adjustment_approve(request=request, actor=finance)
        elif show:
            services.adjustment_reject(request=request, actor=finance, reason="no")
    with django_assert_max_num_queries(8):
        response = client.get(URL, {"show": show} if show else {})
    assert response.status_code == 200
    assert len(response.context["page"]) == min(rows, 25)


def test_the_selectors_keep_a_requesters_own_requests(clerk, staff_user):
    other = staff_user("Customer service")
    mine = waiting(MemberFactory(), clerk, ago=timedelta(minutes=5))
    theirs = waiting(MemberFactory(), other)
    assert list(selectors.adjustment_requests_pending()) == [mine, theirs]
    assert list(selectors.adjustment_requests_pending(requested_by=clerk)) == [mine]
    services.adjustment_reject(request=theirs, actor=staff_user("Finance"), reason="no")
    assert list(selectors.adjustment_requests_decided()) == [theirs]
    assert list(selectors.adjustment_requests_decided(requested_by=clerk)) == []


@pytest.mark.parametrize(
    ("role", "title", "group"),
    [
        ("Finance", "Adjustment approvals", "Finance"),
        ("Customer service", "Points adjustments", "Customer service"),
        ("Administrator", "Adjustment approvals", "Finance"),
        ("Marketing", None, None),
    ],
)
def test_the_sidebar_links_the_page_once_in_the_deciding_roles_group(
    staff_user, role, title, group
):
    from loyalty_site.navigation import groups_for

    links = [
        (g["title"], s["title"])
        for g in groups_for(staff_user(role))
        for s in g["sections"]
        if s["url"] == URL
    ]
    assert links == ([(group, title)] if title else [])
