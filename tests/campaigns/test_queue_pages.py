"""/reviews/ and /moderation/: customer service's work queues (issue 14, item 2).

Purchases the abuse guard stopped, and engagement events that wait for a moderator: listed oldest
first, decided per row or for the ticked rows (one service call per row, each its own
transaction), every decision audited with who, when and why.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg.errors
import pytest
from django.db import OperationalError
from django.urls import reverse
from django.utils import timezone

from campaigns import selectors, services
from campaigns.errors import NotPending
from campaigns.models import AbuseRule, EngagementEvent, PurchaseReview
from campaigns.services import event_record, purchase_record
from ledger.models import Account, Purchase
from members import busy
from members.models import AuditEntry
from tests.campaigns.factories import EarningRuleFactory, EngagementKindFactory
from tests.factories import MemberFactory
from tests.ledger.factories import PurchaseFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

REVIEWS = reverse("reviews")
MODERATION = reverse("moderation")
ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]
DECIDERS = ("Customer service", "Administrator")


@pytest.fixture
def agent(client, staff_user):
    user = staff_user("Customer service")
    client.force_login(user)
    return user


@pytest.fixture
def guard(db):
    """Every purchase waits for review (more than 0 purchases an hour), earning 1 point a euro."""
    EarningRuleFactory(name="Base", rate=1)
    AbuseRule.objects.create(kind=AbuseRule.Kind.MEMBER_VELOCITY, threshold=0)


def stopped(member, amount="30", *, store="Utrecht", at=None, external_id=None):
    at = at or timezone.now() - timedelta(hours=1)
    result = purchase_record(
        member=member,
        channel="pos",
        external_id=external_id or f"R-{member.pk}-{at.timestamp()}",
        amount=Decimal(amount),
        currency="EUR",
        occurred_at=at,
        store=store,
    )
    return PurchaseReview.objects.get(purchase__external_id=result.purchase.external_id)


def shown(response) -> list[str]:
    """The messages of a followed redirect back to the queue (shown there, so used up)."""
    assert response.redirect_chain, response.status_code
    return [str(message) for message in response.context["messages"]]


def balance(member) -> int:
    return Account.objects.filter(member=member).values_list("balance", flat=True).first() or 0


# --- Purchase reviews ------------------------------------------------------------------------


def test_the_review_queue_lists_open_purchases_oldest_first(client, agent, guard):
    anna, bob = MemberFactory(first_name="Anna"), MemberFactory(first_name="Bob")
    newer = stopped(anna, "42.50", store="Amsterdam")
    older = stopped(bob, "12", store="Utrecht", at=timezone.now() - timedelta(days=1))
    older.created_at = timezone.now() - timedelta(days=1)
    older.save(update_fields=["created_at"])
    decided = stopped(bob, "5")
    services.purchase_review_reject(review=decided, actor=agent, reason="test")

    response = client.get(REVIEWS)

    assert response.status_code == 200
    assert list(response.context["page"]) == [older, newer]
    assert response.context["open_count"] == 2
    html = response.content.decode()
    assert "2 open" in html
    row = html[html.index(f'id="review-{newer.pk}"') :].split("</tr>")[0]
    assert "42.50 EUR" in row and "Amsterdam" in row and "pos" in row
    assert "in an hour" in row  # the guard's reason
    assert ">42<" in row  # the points held
    assert reverse("member-page", args=[anna.pk]) in row
    assert 'name="selected"' in row and f'value="approve:{newer.pk}"' in row
    assert_no_unmarked_inline_code(html, None)


def test_the_review_queue_filters_by_status_store_and_date(client, agent, guard):
    member = MemberFactory()
    now = timezone.now()
    utrecht = stopped(member, store="Utrecht", at=now - timedelta(days=3))
    amsterdam = stopped(member, store="Amsterdam", at=now - timedelta(hours=2))
    approved = stopped(member, store="Utrecht", at=now - timedelta(hours=1))
    services.purchase_review_approve(review=approved, actor=agent)

    def listed(**query):
        response = client.get(REVIEWS, query)
        assert response.status_code == 200
        return list(response.context["page"])

    assert listed(store="Utrecht") == [utrecht]
    assert listed(store="Amsterdam") == [amsterdam]
    today = timezone.localdate(now - timedelta(hours=2)).isoformat()
    assert listed(start=today) == [amsterdam]
    three_days_ago = timezone.localdate(now - timedelta(days=3)).isoformat()
    assert listed(end=three_days_ago) == [utrecht]
    assert listed(status="approved") == [approved]
    decided_page = client.get(REVIEWS, {"status": "approved"}).content.decode()
    assert 'name="selected"' not in decided_page and "Approved" in decided_page
    # Bad input is a form error on the filter, not a 500; the queue shows unfiltered.
    response = client.get(REVIEWS, {"start": "yesterday", "store": "Nowhere"})
    assert response.status_code == 200
    assert response.context["filters_form"].errors.keys() == {"start", "store"}
    assert len(response.context["page"]) == 2
    backwards = client.get(REVIEWS, {"start": today, "end": three_days_ago})
    assert "The end date comes before the start date." in backwards.content.decode()


def test_approving_a_review_posts_the_points_and_audits_it(client, agent, guard):
    member = MemberFactory()
    review = stopped(member, "30")

    response = client.post(
        REVIEWS, {"decide": f"approve:{review.pk}", "reason": "regular customer"}, follow=True
    )

    assert shown(response) == ["1 purchase approved."]
    review.refresh_from_db()
    assert (review.status, review.decided_by) == ("approved", agent)
    assert review.purchase.status == Purchase.Status.RECORDED
    assert balance(member) == 30
    audit = AuditEntry.objects.get()
    assert (audit.actor, audit.action, audit.member, audit.reason) == (
        agent,
        "purchase_review_approve",
        member,
        "regular customer",
    )
    assert audit.details == {
        "review_id": review.pk,
        "purchase_id": review.purchase_id,
        "points": 30,
    }


def test_rejecting_a_review_voids_the_points_and_audits_the_reason(client, agent, guard):
    member = MemberFactory()
    review = stopped(member, "30")

    response = client.post(
        REVIEWS, {"decide": f"reject:{review.pk}", "reason": "card skimming"}, follow=True
    )

    assert shown(response) == ["1 purchase rejected."]
    review.refresh_from_db()
    assert review.status == "rejected"
    assert review.purchase.status == Purchase.Status.REJECTED
    assert balance(member) == 0
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.reason, audit.actor) == (
        "purchase_review_reject",
        "card skimming",
        agent,
    )


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"decide": "reject:{pk}", "reason": "  "}, "Say why you reject it"),
        ({"decide": "reject", "selected": ["{pk}"]}, "Say why you reject it"),
        ({"decide": "approve"}, "Tick at least one row first."),
        ({"decide": "", "selected": ["{pk}"]}, "Press Approve or Reject."),
        ({"decide": "approve", "selected": ["x"]}, "The selection is not valid"),
        ({"decide": "approve:x"}, "The selection is not valid"),
    ],
)
def test_bad_decisions_are_form_errors_and_change_nothing(client, agent, guard, data, error):
    review = stopped(MemberFactory())
    data = {
        key: [v.format(pk=review.pk) for v in value] if isinstance(value, list) else value
        for key, value in data.items()
    }
    data["decide"] = data["decide"].format(pk=review.pk)

    response = client.post(REVIEWS, data)

    assert response.status_code == 200
    assert error in response.content.decode()
    review.refresh_from_db()
    assert review.status == "open"
    assert not AuditEntry.objects.exists()


def test_a_bulk_approval_reports_the_refused_row_and_does_the_others(
    client, agent, guard, staff_user
):
    members = [MemberFactory() for _ in range(3)]
    reviews = [stopped(member, "20") for member in members]
    # Decided meanwhile by a colleague in another tab:
    services.purchase_review_reject(review=reviews[1], actor=staff_user("Customer service"))

    response = client.post(
        REVIEWS,
        {"decide": "approve", "selected": [r.pk for r in reviews] + [999999], "reason": "ok"},
        follow=True,
    )

    assert shown(response) == [
        "2 purchases approved.",
        "#999999: Not found.",
        f"{members[1]} · {reviews[1].purchase.external_id}: {NotPending.default_detail}",
    ]
    statuses = dict(PurchaseReview.objects.values_list("pk", "status"))
    assert [statuses[r.pk] for r in reviews] == ["approved", "rejected", "approved"]
    assert [balance(m) for m in members] == [20, 0, 20]
    assert AuditEntry.objects.filter(action="purchase_review_approve").count() == 2


def test_a_review_decided_in_another_tab_says_so_and_changes_nothing(
    client, agent, guard, staff_user
):
    member = MemberFactory()
    review = stopped(member)
    services.purchase_review_approve(review=review, actor=staff_user("Customer service"))

    response = client.post(
        REVIEWS, {"decide": f"reject:{review.pk}", "reason": "fraud"}, follow=True
    )

    label = f"{member} · {review.purchase.external_id}"
    assert shown(response) == [f"{label}: {NotPending.default_detail}"]
    review.refresh_from_db()
    assert review.status == "approved"
    assert balance(member) == 30
    assert AuditEntry.objects.filter(action="purchase_review_reject").count() == 0


def test_a_decision_that_keeps_deadlocking_is_busy_and_changes_nothing(
    client, agent, guard, monkeypatch
):
    monkeypatch.setattr(busy, "RETRY_BASE_SECONDS", 0)
    member = MemberFactory()
    review = stopped(member)
    calls = []

    def deadlocked(**kwargs):
        calls.append(kwargs)
        error = OperationalError("deadlock detected")
        error.__cause__ = psycopg.errors.DeadlockDetected("forced")
        raise error

    monkeypatch.setattr(services, "purchase_review_approve", deadlocked)

    response = client.post(REVIEWS, {"decide": f"approve:{review.pk}"}, follow=True)

    assert len(calls) == busy.WRITE_RETRIES + 1
    label = f"{member} · {review.purchase.external_id}"
    assert shown(response) == [f"{label}: {busy.WriteBusy.default_detail}"]
    review.refresh_from_db()
    assert review.status == "open"


def test_after_a_decision_the_queue_keeps_its_filters(client, agent, guard):
    review = stopped(MemberFactory(), store="Utrecht")
    url = f"{REVIEWS}?store=Utrecht"
    response = client.post(url, {"decide": f"approve:{review.pk}"})
    assert response.status_code == 302 and response["Location"] == url


# --- Engagement moderation -------------------------------------------------------------------


@pytest.fixture
def kinds(db):
    review = EngagementKindFactory(code="review", name="Review", points=40, requires_approval=True)
    survey = EngagementKindFactory(
        code="survey", name="Survey", points=25, requires_approval=True, collects_nps=True
    )
    return review, survey


def test_the_moderation_queue_lists_waiting_events_oldest_first(client, agent, kinds):
    anna, bob = MemberFactory(first_name="Anna"), MemberFactory(first_name="Bob")
    newer = event_record(member=anna, kind="review", reference="REV-1", channel="app")
    older = event_record(
        member=bob, kind="survey", reference="S-1", score=9, at=timezone.now() - timedelta(days=2)
    )
    services.event_reject(
        event=event_record(member=bob, kind="review", reference="REV-2"), actor=agent
    )

    response = client.get(MODERATION)

    assert response.status_code == 200
    assert list(response.context["page"]) == [older, newer]
    assert response.context["waiting_count"] == 2
    html = response.content.decode()
    assert "2 waiting" in html
    row = html[html.index(f'id="event-{older.pk}"') :].split("</tr>")[0]
    assert "Survey" in row and "NPS 9/10" in row and "S-1" in row and ">25<" in row
    newer_row = html[html.index(f'id="event-{newer.pk}"') :].split("</tr>")[0]
    assert "REV-1" in newer_row and "through app" in newer_row and ">40<" in newer_row
    assert_no_unmarked_inline_code(html, None)
    survey = kinds[1]
    assert list(client.get(MODERATION, {"kind": survey.pk}).context["page"]) == [older]
    assert client.get(MODERATION, {"kind": "nope"}).status_code == 200


def test_approving_an_event_credits_the_points_and_audits_it(client, agent, kinds):
    member = MemberFactory()
    event = event_record(member=member, kind="survey", reference="S-1", score=10)

    response = client.post(MODERATION, {"decide": f"approve:{event.pk}"}, follow=True)

    assert shown(response) == ["1 event approved."]
    event.refresh_from_db()
    assert (event.status, event.decided_by) == (EngagementEvent.Status.CREDITED, agent)
    assert balance(member) == 25
    member.refresh_from_db()
    assert member.nps_score == 10
    audit = AuditEntry.objects.get()
    assert (audit.action, audit.actor, audit.member, audit.reason) == (
        "event_approve",
        agent,
        member,
        "",
    )
    assert audit.details == {"event_id": event.pk, "kind": "survey", "points": 25}


def test_rejecting_events_in_bulk_records_the_reason_and_reports_the_refused_one(
    client, agent, kinds, staff_user
):
    members = [MemberFactory() for _ in range(3)]
    events = [
        event_record(member=member, kind="review", reference=f"REV-{i}")
        for i, member in enumerate(members)
    ]
    services.event_approve(event=events[2], actor=staff_user("Administrator"))

    response = client.post(
        MODERATION,
        {"decide": "reject", "selected": [e.pk for e in events], "reason": "spam links"},
        follow=True,
    )

    assert shown(response) == [
        "2 events rejected.",
        f"{members[2]} · Review: {NotPending.default_detail}",
    ]
    statuses = [EngagementEvent.objects.get(pk=e.pk).status for e in events]
    assert statuses == ["rejected", "rejected", "credited"]
    rejections = AuditEntry.objects.filter(action="event_reject")
    assert sorted(rejections.values_list("member_id", flat=True)) == [
        members[0].pk,
        members[1].pk,
    ]
    assert set(rejections.values_list("reason", "actor")) == {("spam links", agent.pk)}
    assert [balance(m) for m in members[:2]] == [0, 0]


def test_a_moderation_rejection_without_a_reason_is_a_form_error(client, agent, kinds):
    event = event_record(member=MemberFactory(), kind="review", reference="REV-1")
    response = client.post(MODERATION, {"decide": f"reject:{event.pk}"})
    assert response.status_code == 200
    assert "Say why you reject it" in response.content.decode()
    event.refresh_from_db()
    assert event.status == EngagementEvent.Status.PENDING


# --- Both queues -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_who_may_work_the_queues(client, staff_user, guard, kinds, role):
    review = stopped(MemberFactory())
    event = event_record(member=MemberFactory(), kind="review", reference="REV-1")
    client.force_login(staff_user(role))
    allowed = role in DECIDERS

    for url, decide in [(REVIEWS, f"approve:{review.pk}"), (MODERATION, f"approve:{event.pk}")]:
        assert client.get(url).status_code == (200 if allowed else 403)
        assert client.post(url, {"decide": decide}).status_code == (302 if allowed else 403)

    review.refresh_from_db()
    event.refresh_from_db()
    assert review.status == ("approved" if allowed else "open")
    assert event.status == ("credited" if allowed else "pending")


def test_signed_out_users_go_to_the_login_page(client):
    for url in (REVIEWS, MODERATION):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def _many_reviews(count: int):
    # Straight rows, not through the guard: the page's queries, not the purchase path, are tested.
    for i in range(count):
        purchase = PurchaseFactory(
            store=f"Store {i % 4}",
            status=Purchase.Status.UNDER_REVIEW,
            occurred_at=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(minutes=i),
        )
        PurchaseReview.objects.create(
            purchase=purchase, member=purchase.member, reason="More than 5 purchases", points=i
        )


@pytest.mark.parametrize("rows", [3, 60])
def test_the_review_queue_answers_with_a_bounded_number_of_queries(
    client, agent, django_assert_max_num_queries, rows
):
    _many_reviews(rows)
    with django_assert_max_num_queries(9):
        response = client.get(REVIEWS, {"store": "", "start": "2026-10-01"})
    assert len(response.context["page"]) == min(rows, 50)
    PurchaseReview.objects.update(status="approved", decided_by=agent, decided_at=timezone.now())
    with django_assert_max_num_queries(9):
        response = client.get(REVIEWS, {"status": "approved"})
    assert len(response.context["page"]) == min(rows, 50)


@pytest.mark.parametrize("rows", [3, 60])
def test_the_moderation_queue_answers_with_a_bounded_number_of_queries(
    client, agent, kinds, django_assert_max_num_queries, rows
):
    for i in range(rows):
        EngagementEvent.objects.create(
            member=MemberFactory(),
            kind=kinds[i % 2],
            reference=f"E-{i}",
            status=EngagementEvent.Status.PENDING,
            points=10,
            score=5 if i % 2 else None,
        )
    with django_assert_max_num_queries(9):
        response = client.get(MODERATION)
    assert len(response.context["page"]) == min(rows, 50)


@pytest.mark.parametrize("rows", [3, 12])
def test_a_bulk_decision_makes_a_bounded_number_of_queries_per_row(
    client, agent, kinds, django_assert_max_num_queries, rows
):
    events = [
        event_record(member=MemberFactory(), kind="review", reference=f"R-{i}") for i in range(rows)
    ]
    with django_assert_max_num_queries(8 + 10 * rows):
        client.post(
            MODERATION, {"decide": "reject", "selected": [e.pk for e in events], "reason": "x"}
        )
    assert EngagementEvent.objects.filter(status="rejected").count() == rows


def test_the_queue_selectors(guard, agent):
    member = MemberFactory()
    first = stopped(member, store="Utrecht")
    second = stopped(member, store="Amsterdam")
    assert list(selectors.purchase_reviews()) == [first, second]
    assert list(selectors.purchase_reviews(store="Amsterdam")) == [second]
    assert selectors.purchase_review_stores() == ["Amsterdam", "Utrecht"]
    services.purchase_review_approve(review=first, actor=agent)
    assert list(selectors.purchase_reviews()) == [second]
    assert list(selectors.purchase_reviews(status="approved")) == [first]


def test_decisions_made_without_a_reason_are_audited_too(guard, agent, kinds):
    """The admin's actions (and any other caller) give no reason: the audit still says who."""
    review = stopped(MemberFactory())
    services.purchase_review_reject(review=review, actor=agent)
    event = event_record(member=MemberFactory(), kind="review", reference="R")
    services.event_reject(event=event, actor=agent)
    actions = set(AuditEntry.objects.values_list("action", "actor", "reason"))
    assert actions == {("purchase_review_reject", agent.pk, ""), ("event_reject", agent.pk, "")}


def test_the_sidebar_links_the_queues_for_customer_service(client, agent):
    html = client.get("/").content.decode()
    assert f'href="{REVIEWS}"' in html and f'href="{MODERATION}"' in html
    assert "admin/campaigns/purchasereview" not in html
