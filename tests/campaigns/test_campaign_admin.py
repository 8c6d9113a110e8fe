"""The campaign admin: marketing edits what the status allows and moves campaigns with a reason."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns.models import Campaign, CampaignTransition, EarningRule
from loyalty_site.errors import DomainError
from members.change_reason import FIELD as CHANGE_REASON
from members.models import AuditEntry
from tests.campaigns.campaigning import draft, running
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(staff_user):
    return staff_user("Marketing")


@pytest.fixture
def marketing(client, marketer):
    client.force_login(marketer)
    return client


def change_url(campaign):
    return reverse("admin:campaigns_campaign_change", args=[campaign.pk])


def test_a_draft_shows_its_moves_rules_and_simulation(marketing):
    campaign = draft(starts_at=timezone.now() + timedelta(days=1))
    page = marketing.get(change_url(campaign))
    assert page.status_code == 200
    assert [a for a, _label in page.context["campaign_actions"]] == ["schedule", "archive"]
    assert page.context["campaign_can_simulate"] is True
    text = page.content.decode()
    assert reverse("admin:campaigns_campaign_simulate", args=[campaign.pk]) in text
    assert "Campaign bonus" in text  # the inline rule
    assert marketing.get(reverse("admin:campaigns_campaign_changelist")).status_code == 200
    assert marketing.get(reverse("admin:campaigns_campaign_add")).status_code == 200


def test_a_move_asks_for_a_reason_and_records_it_with_the_user(marketing, marketer):
    campaign = draft(starts_at=timezone.now() + timedelta(days=1))
    url = reverse("admin:campaigns_campaign_transition", args=[campaign.pk, "schedule"])
    assert marketing.get(url).status_code == 200
    response = marketing.post(url, {"reason": "approved"})
    assert response.status_code == 302
    move = CampaignTransition.objects.get(campaign=campaign)
    assert (move.to_status, move.actor, move.reason) == ("scheduled", marketer, "approved")


def test_a_refused_move_is_a_message_not_an_error(marketing):
    campaign = draft(rules=(), starts_at=timezone.now() + timedelta(days=1))
    url = reverse("admin:campaigns_campaign_transition", args=[campaign.pk, "schedule"])
    page = marketing.get(url)
    assert "rules" in page.context["problems"]
    response = marketing.post(url, {"reason": ""})
    assert response.status_code == 302
    assert any("earning rule" in str(m) for m in get_messages(response.wsgi_request))
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    pause = reverse("admin:campaigns_campaign_transition", args=[campaign.pk, "pause"])
    marketing.post(pause, {"reason": ""})
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_running_campaign_form_refuses_a_lower_budget_on_the_field(marketing):
    MemberFactory()
    campaign = running(budget_points=100)
    page = marketing.get(change_url(campaign))
    form = page.context["adminform"].form
    assert set(form.fields) == {"name", "description", "ends_at", "budget_points",
                                "budget_money", "member_cap_points"}  # fmt: skip
    data = {
        "name": campaign.name,
        "description": "",
        "ends_at_0": timezone.localtime(campaign.ends_at).date().isoformat(),
        "ends_at_1": timezone.localtime(campaign.ends_at).time().isoformat("seconds"),
        "budget_points": "50",
        "budget_money": "",
        "member_cap_points": "",
        "rules-TOTAL_FORMS": "0",
        "rules-INITIAL_FORMS": "0",
        "message_templates-TOTAL_FORMS": "0",
        "message_templates-INITIAL_FORMS": "0",
        "transitions-TOTAL_FORMS": "0",
        "transitions-INITIAL_FORMS": "0",
    }
    response = marketing.post(change_url(campaign), data)
    assert response.status_code == 200
    assert "budget_points" in response.context["adminform"].form.errors
    assert Campaign.objects.get(pk=campaign.pk).budget_points == 100
    data["budget_points"] = "150"
    response = marketing.post(change_url(campaign), data)
    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).budget_points == 150
    assert CampaignTransition.objects.filter(campaign=campaign, reason__contains="budget_points")


def test_the_simulation_page_shows_the_projection(marketing):
    campaign = draft(budget_points=Decimal(100))
    url = reverse("admin:campaigns_campaign_simulate", args=[campaign.pk])
    assert marketing.get(url).status_code == 200
    today = timezone.localdate()
    response = marketing.post(
        url,
        {"start": (today - timedelta(days=30)).isoformat(), "end": today.isoformat()},
    )
    assert response.status_code == 200
    assert response.context["report"].points == 0
    assert "Budget runs out on" in response.content.decode()


def test_the_simulate_action_opens_the_page_for_one_draft_and_refuses_others(marketing):
    campaign = draft()
    url = reverse("admin:campaigns_campaign_changelist")
    response = marketing.post(
        url, {"action": "simulate_selected", "_selected_action": [campaign.pk]}
    )
    assert response.url == reverse("admin:campaigns_campaign_simulate", args=[campaign.pk])
    MemberFactory()
    started = running()
    response = marketing.post(
        url, {"action": "simulate_selected", "_selected_action": [started.pk]}
    )
    assert response.status_code == 302 and response.url != reverse(
        "admin:campaigns_campaign_simulate", args=[started.pk]
    )
    page = marketing.get(reverse("admin:campaigns_campaign_simulate", args=[started.pk]))
    assert page.status_code == 302  # a running campaign is not simulated


def _rules_formset(request, campaign, changes: dict, *, delete=False):
    """The campaign page's earning-rules inline, bound to its one rule with `changes`."""
    from django.contrib.admin.sites import site

    campaign_admin = site._registry[Campaign]
    inline = next(i for i in campaign_admin.get_inline_instances(request, campaign)
                  if i.model is EarningRule)  # fmt: skip
    rule = campaign.rules.get()
    values = {name: getattr(rule, name) for name in inline.fields}
    values.update(changes)
    data = {"rules-TOTAL_FORMS": "1", "rules-INITIAL_FORMS": "1", "rules-0-id": str(rule.pk),
            "rules-0-campaign": str(campaign.pk)}  # fmt: skip
    for name, value in values.items():
        if isinstance(value, bool):
            if value:
                data[f"rules-0-{name}"] = "on"
        elif value is not None:
            data[f"rules-0-{name}"] = str(value)
    if delete:
        data["rules-0-DELETE"] = "on"
    formset = inline.get_formset(request, campaign)(data, instance=campaign, prefix="rules")
    assert formset.is_valid(), formset.errors
    return campaign_admin, formset


class _ReasonForm:
    cleaned_data = {CHANGE_REASON: "tuned for the launch"}


def test_the_rules_inline_saves_through_the_rule_service_with_the_reason(rf, marketer):
    campaign = draft(starts_at=timezone.now() + timedelta(days=1))
    request = rf.post("/")
    request.user = marketer
    campaign_admin, formset = _rules_formset(request, campaign, {"name": "Launch bonus"})
    campaign_admin.save_formset(request, _ReasonForm(), formset, change=True)
    assert campaign.rules.get().name == "Launch bonus"
    entry = AuditEntry.objects.get(action="earning_rule_change")
    assert (entry.actor, entry.reason) == (marketer, "tuned for the launch")

    campaign_admin, formset = _rules_formset(request, campaign, {}, delete=True)
    campaign_admin.save_formset(request, _ReasonForm(), formset, change=True)
    assert not campaign.rules.exists()
    assert AuditEntry.objects.get(action="earning_rule_delete").actor == marketer


def test_the_rules_inline_of_a_campaign_no_longer_draft_is_refused_by_the_service(rf, marketer):
    MemberFactory()
    campaign = draft(starts_at=timezone.now() + timedelta(days=1))
    request = rf.post("/")
    request.user = marketer
    campaign_admin, formset = _rules_formset(request, campaign, {"bonus_points": 500})
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.SCHEDULED)
    with pytest.raises(DomainError):
        campaign_admin.save_formset(request, _ReasonForm(), formset, change=True)
    assert campaign.rules.get().bonus_points == 10
    assert not AuditEntry.objects.filter(action="earning_rule_change").exists()
