"""The back office: marketing edits rules and simulates; customer service works the queues."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns.models import AbuseRule, EarningRule, EngagementEvent, PurchaseReview
from campaigns.services import event_record, purchase_record
from ledger.models import Account
from tests.campaigns.factories import EarningRuleFactory, EngagementKindFactory
from tests.factories import MemberFactory


@pytest.fixture
def marketing(client, staff_user):
    client.force_login(staff_user("Marketing"))
    return client


@pytest.fixture
def service(client, staff_user):
    client.force_login(staff_user("Customer service"))
    return client


@pytest.mark.django_db
def test_marketing_edits_rules_and_sees_them(marketing):
    rule = EarningRuleFactory(name="Base")
    listed = marketing.get(reverse("admin:campaigns_earningrule_changelist"))
    assert list(listed.context["cl"].result_list) == [rule]
    assert marketing.get(reverse("admin:campaigns_earningrule_add")).status_code == 200
    page = marketing.get(reverse("admin:campaigns_earningrule_change", args=[rule.pk]))
    assert page.context["original"] == rule
    assert page.context["has_change_permission"] is True
    assert marketing.get(reverse("admin:campaigns_challenge_add")).status_code == 200
    assert marketing.get(reverse("admin:campaigns_engagementkind_add")).status_code == 200


@pytest.mark.django_db
def test_marketing_runs_the_simulator(marketing):
    rule = EarningRuleFactory(name="Base", rate=2)
    member = MemberFactory()
    yesterday = timezone.now() - timedelta(days=1)
    purchase_record(
        member=member, channel="pos", external_id="A", amount=Decimal("10"), currency="EUR",
        occurred_at=yesterday,
    )  # fmt: skip
    url = reverse("admin:campaigns_earningrule_simulate")
    page = marketing.get(url, {"rules": str(rule.pk)})
    assert page.context["form"].initial["rules"] == [rule.pk]
    assert page.context["report"] is None
    response = marketing.post(
        url,
        {
            "start": (yesterday - timedelta(days=2)).date().isoformat(),
            "end": timezone.localdate().isoformat(),
            "rules": [rule.pk],
        },
    )
    assert response.status_code == 200
    report = response.context["report"]
    assert report.points == 20
    assert report.members_reached == 1


@pytest.mark.django_db
def test_customer_service_cannot_edit_rules_or_simulate(service):
    assert service.get(reverse("admin:campaigns_earningrule_add")).status_code == 403
    assert service.get(reverse("admin:campaigns_earningrule_simulate")).status_code == 403


@pytest.mark.django_db
def test_customer_service_approves_a_purchase_in_the_review_queue(service):
    EarningRuleFactory(name="Base", rate=1)
    AbuseRule.objects.create(kind=AbuseRule.Kind.MEMBER_VELOCITY, threshold=0)
    member = MemberFactory()
    purchase_record(
        member=member, channel="pos", external_id="A", amount=Decimal("30"), currency="EUR",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
    )  # fmt: skip
    review = PurchaseReview.objects.get()
    url = reverse("admin:campaigns_purchasereview_changelist")
    page = service.get(url)
    assert page.status_code == 200
    assert "in an hour" in page.content.decode()
    response = service.post(url, {"action": "approve", "_selected_action": [review.pk]})
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["1 purchase approved."]
    review.refresh_from_db()
    assert review.status == "approved"
    assert Account.objects.get(member=member).balance == 30


@pytest.mark.django_db
def test_customer_service_moderates_engagement(service):
    EngagementKindFactory(code="review", points=40, requires_approval=True)
    member = MemberFactory()
    good = event_record(member=member, kind="review", reference="1")
    bad = event_record(member=member, kind="review", reference="2")
    url = reverse("admin:campaigns_engagementevent_changelist")
    listed = service.get(url)
    assert {event.pk for event in listed.context["cl"].result_list} == {good.pk, bad.pk}
    # Followed, so that the list page shows (and uses up) the message.
    approved = service.post(url, {"action": "approve", "_selected_action": [good.pk]}, follow=True)
    assert [str(m) for m in approved.context["messages"]] == ["1 event approved."]
    rejected = service.post(url, {"action": "reject", "_selected_action": [bad.pk]})
    assert [str(m) for m in get_messages(rejected.wsgi_request)] == ["1 event rejected."]
    statuses = dict(EngagementEvent.objects.values_list("reference", "status"))
    assert statuses == {"1": "credited", "2": "rejected"}
    assert Account.objects.get(member=member).balance == 40


@pytest.mark.django_db
def test_landing_page_shows_each_role_its_sections(client, staff_user):
    client.force_login(staff_user("Marketing"))
    page = client.get("/").content.decode()
    # The rule pages (each with its simulator) replace the admin's rules and simulator.
    assert "Earning rules" in page and 'href="/rules/"' in page
    assert "Purchase review queue" not in page
    client.force_login(staff_user("Customer service"))
    page = client.get("/").content.decode()
    assert "Purchase review queue" in page and "Engagement moderation" in page
    assert "Earning rules" not in page


def rule_post(**fields):
    data = {"name": "Weekend", "kind": "bonus", "rate": "0", "multiplier": "1",
            "bonus_points": "50", "rounding": "down", "cap_period": "month", "priority": "0",
            "stacks": "on", "active": "on"}  # fmt: skip
    data.update(fields)
    return data


@pytest.mark.django_db
def test_marketing_enters_rule_conditions_as_lists(marketing):
    response = marketing.post(
        reverse("admin:campaigns_earningrule_add"),
        rule_post(skus="A1, B2\nC3\n\n", categories="dairy", days_of_week=["5", "6"]),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = EarningRule.objects.get(name="Weekend")
    assert (rule.skus, rule.categories, rule.stores, rule.days_of_week) == (
        ["A1", "B2", "C3"], ["dairy"], [], [5, 6]
    )  # fmt: skip
    page = marketing.get(reverse("admin:campaigns_earningrule_change", args=[rule.pk]))
    assert "A1\nB2\nC3</textarea>" in page.content.decode()


@pytest.mark.django_db
def test_the_admin_refuses_a_bad_rule_with_a_translated_error(marketing):
    url = reverse("admin:campaigns_earningrule_add")
    response = marketing.post(url, rule_post(days_of_week=["sat"]), HTTP_ACCEPT_LANGUAGE="nl")
    form = response.context["adminform"].form
    assert form.errors["days_of_week"] == [
        "Selecteer een geldige keuze. sat is geen beschikbare keuze."
    ]
    response = marketing.post(
        url, rule_post(starts_at_0="2026-12-01", starts_at_1="00:00", ends_at_0="2026-11-01",
                       ends_at_1="00:00"),
    )  # fmt: skip
    assert response.context["adminform"].form.errors["ends_at"] == [
        "The end must be after the start."
    ]
    assert not EarningRule.objects.exists()


@pytest.mark.django_db
def test_rule_conditions_are_validated_on_full_clean_and_held_by_the_database():
    from django.core.exceptions import ValidationError
    from django.db import IntegrityError, transaction

    rule = EarningRule(name="Bad", days_of_week=["sat"], categories={"a": 1}, skus=["", "A1"])
    with pytest.raises(ValidationError) as refused:
        rule.full_clean()
    assert set(refused.value.message_dict) >= {"days_of_week", "categories", "skus"}
    with transaction.atomic(), pytest.raises(IntegrityError, match="categories_is_list"):
        EarningRule.objects.create(name="Bad", categories={"a": 1})
    with transaction.atomic(), pytest.raises(IntegrityError, match="kind_valid"):
        EarningRule.objects.create(name="Bad", kind="points")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("start", "end", "error"),
    [
        (1, -2, "The end must be after the start."),
        (10000, 0, "Simulate from 2000-01-01 at the earliest."),
        (0, 2, "The period cannot end more than a day from now."),
    ],
)
def test_the_simulator_form_refuses_a_bad_period(marketing, start, end, error):
    rule = EarningRuleFactory(name="Base", rate=2)
    today = timezone.localdate()
    response = marketing.post(
        reverse("admin:campaigns_earningrule_simulate"),
        {"start": (today - timedelta(days=start)).isoformat(),
         "end": (today + timedelta(days=end)).isoformat(), "rules": [rule.pk]},
    )  # fmt: skip
    assert response.context["form"].non_field_errors() == [error]
    assert response.context["report"] is None


@pytest.mark.django_db
def test_numbers_beyond_their_column_are_form_errors(marketing):
    response = marketing.post(
        reverse("admin:campaigns_earningrule_add"),
        rule_post(bonus_points="2147483648", min_spend="10000000000", budget_points="-1"),
    )
    errors = response.context["adminform"].form.errors
    assert errors["bonus_points"] == ["Ensure this value is less than or equal to 2147483647."]
    assert "Ensure this value is less than or equal to 9999999999.99." in errors["min_spend"]
    assert errors["budget_points"] == ["Ensure this value is greater than or equal to 0."]
    assert not EarningRule.objects.exists()
