"""Marketing's campaign pages: the list, the builder (create and edit a draft, refusals after it,
templates, offers, the message preview, the lifecycle's buttons, the simulation job) and the
results page; who may use them; CSP; query bounds."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import (
    Campaign,
    CampaignOffer,
    CampaignResult,
    CampaignTransition,
    MessageTemplate,
    Segment,
)
from campaigns.results import campaign_spend_by_day, cumulative_per_member
from campaigns.services import (
    campaign_results_refresh,
    campaign_schedule,
    campaign_send_start,
    messages_due,
    messages_send,
)
from members.models import AuditEntry, BackgroundJob
from tests.campaigns.factories import EarningRuleFactory
from tests.campaigns.offering import active_campaign, buy, salt_splitting
from tests.campaigns.sending import member_with, message_campaign
from tests.factories import MemberFactory
from tests.rewards.factories import RewardFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

ALLOWED = ["Marketing", "Administrator"]
REFUSED = ["Customer service", "Finance"]


@pytest.fixture
def marketer(client, staff_user):
    user = staff_user("Marketing")
    client.force_login(user)
    return user


def local(moment) -> str:
    """A moment as a datetime-local input holds it (the programme's time zone)."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def message_draft(**fields) -> Campaign:
    start = timezone.now() + timedelta(days=2)
    campaign = Campaign.objects.create(
        name=fields.pop("name", "Spring news"),
        kind=Campaign.Kind.MESSAGE,
        starts_at=start,
        ends_at=start + timedelta(days=7),
        **fields,
    )
    return campaign


def with_templates(campaign: Campaign) -> Campaign:
    for language, body in [
        ("en", "Hello {{ first_name }}, you have {{ balance }} points."),
        ("nl", "Hallo {{ first_name }}, u hebt {{ balance }} punten."),
    ]:
        MessageTemplate.objects.create(
            campaign=campaign, channel="email", language=language, subject="News", body=body
        )
    return campaign


def form_fields(**overrides) -> dict:
    start = timezone.now() + timedelta(days=3)
    fields = {
        "name": "Autumn bonus",
        "description": "",
        "kind": "earning",
        "segment": "",
        "starts_at": local(start),
        "ends_at": local(start + timedelta(days=14)),
        "control_percent": "10",
        "frequency_capped": "on",
        "budget_points": "",
        "budget_money": "",
        "member_cap_points": "",
        "member_cap_period": "lifetime",
    }
    fields.update(overrides)
    return {key: value for key, value in fields.items() if value is not None}


# -- who may use the pages -----------------------------------------------------------------------


@pytest.fixture
def every_kind(db):
    earning = Campaign.objects.create(name="Earn", kind="earning")
    EarningRuleFactory(campaign=earning, name="Double")
    offer = Campaign.objects.create(name="Offer", kind="offer")
    CampaignOffer.objects.create(campaign=offer, reward=RewardFactory(), rule="fallback")
    message = with_templates(message_draft())
    running = active_campaign(kind=Campaign.Kind.EARNING, starts_at=timezone.now())
    return [earning, offer, message, running]


@pytest.mark.parametrize("role", ALLOWED)
def test_the_pages_render_for_marketing_and_administrators(client, staff_user, role, every_kind):
    client.force_login(staff_user(role))
    urls = [reverse("campaign-list"), reverse("campaign-new")]
    urls += [reverse("campaign-edit", args=[c.pk]) for c in every_kind]
    urls.append(reverse("campaign-results", args=[every_kind[-1].pk]))
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_no_unmarked_inline_code(response.content.decode(), None)


@pytest.mark.parametrize("role", REFUSED)
def test_the_pages_are_refused_to_other_roles(client, staff_user, role, every_kind):
    client.force_login(staff_user(role))
    campaign = every_kind[2]
    template = campaign.message_templates.first()
    gets = [
        reverse("campaign-list"),
        reverse("campaign-new"),
        reverse("campaign-edit", args=[campaign.pk]),
        reverse("campaign-preview", args=[campaign.pk]) + "?member=1&channel=email",
        reverse("campaign-results", args=[campaign.pk]),
    ]
    for url in gets:
        assert client.get(url).status_code == 403, url
    posts = [
        reverse("campaign-new"),
        reverse("campaign-edit", args=[campaign.pk]),
        reverse("campaign-action", args=[campaign.pk, "schedule"]),
        reverse("campaign-template-save", args=[campaign.pk]),
        reverse("campaign-template-delete", args=[campaign.pk, template.pk]),
        reverse("campaign-offer-add", args=[every_kind[1].pk]),
        reverse("campaign-offer-delete", args=[every_kind[1].pk, every_kind[1].offers.get().pk]),
        reverse("campaign-simulate", args=[every_kind[0].pk]),
        reverse("campaign-results-refresh", args=[every_kind[3].pk]),
    ]
    for url in posts:
        assert client.post(url, {"schedule-reason": "x", **form_fields()}).status_code == 403, url
    assert Campaign.objects.count() == 4
    assert campaign.message_templates.count() == 2
    assert not CampaignTransition.objects.exclude(campaign=every_kind[3]).exists()
    assert not BackgroundJob.objects.exists()


# -- creating and editing ------------------------------------------------------------------------


def test_a_marketer_creates_a_draft_with_a_ten_percent_control_group(client, marketer):
    segment = Segment.objects.create(name="Coffee buyers")
    response = client.post(
        reverse("campaign-new"),
        form_fields(segment=str(segment.pk), budget_points="5000", member_cap_points="200"),
    )
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert response["Location"] == reverse("campaign-edit", args=[campaign.pk])
    assert (campaign.name, campaign.status, campaign.kind) == ("Autumn bonus", "draft", "earning")
    assert campaign.control_basis_points == 1000
    assert (campaign.segment, campaign.budget_points, campaign.member_cap_points) == (
        segment,
        5000,
        200,
    )
    assert campaign.created_by == marketer
    assert campaign.ends_at - campaign.starts_at == timedelta(days=14)
    entry = AuditEntry.objects.get(action="campaign_create")
    assert entry.actor == marketer and entry.details["campaign_id"] == campaign.pk


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"control_percent": "60"}, "less than or equal to 50"),
        ({"name": ""}, "This field is required"),
        ({"kind": "bogus"}, "Select a valid choice"),
        ({"budget_points": "-5"}, "greater than or equal to 0"),
    ],
)
def test_bad_input_is_a_form_error_and_writes_nothing(client, marketer, overrides, message):
    response = client.post(reverse("campaign-new"), form_fields(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Campaign.objects.exists() and not AuditEntry.objects.exists()


def test_an_end_before_the_start_is_refused(client, marketer):
    start = timezone.now() + timedelta(days=3)
    response = client.post(
        reverse("campaign-new"),
        form_fields(starts_at=local(start), ends_at=local(start - timedelta(days=1))),
    )
    assert response.status_code == 400
    assert "must end after it starts" in response.content.decode()
    assert not Campaign.objects.exists()


def test_a_draft_is_edited_freely(client, marketer):
    campaign = message_draft()
    data = form_fields(
        name="Spring news, take two",
        kind="message",
        control_percent="12.5",
        starts_at=local(campaign.starts_at),
        ends_at=local(campaign.ends_at),
        frequency_capped=None,
    )
    response = client.post(reverse("campaign-edit", args=[campaign.pk]), data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Spring news, take two"
    assert campaign.control_basis_points == 1250
    assert campaign.frequency_capped is False
    # A draft's edits are not transitions.
    assert not CampaignTransition.objects.exists()


def test_a_scheduled_campaign_shows_its_fields_read_only_and_refuses_a_forged_edit(
    client, marketer
):
    campaign = with_templates(message_draft())
    campaign_schedule(campaign=campaign, actor=marketer, reason="ready")
    html = client.get(reverse("campaign-edit", args=[campaign.pk])).content.decode()
    assert 'name="kind"' not in html and 'name="control_percent"' not in html
    assert 'name="name"' in html  # the name may change in any status
    assert "Fixed now" in html
    response = client.post(
        reverse("campaign-edit", args=[campaign.pk]),
        {"name": campaign.name, "description": "", "kind": "offer", "control_percent": "50"},
    )
    assert response.status_code == 400
    assert "Not while the campaign is scheduled" in response.content.decode()
    campaign.refresh_from_db()
    assert (campaign.kind, campaign.control_basis_points) == ("message", 1000)
    # Its name may change; the change is recorded as a transition.
    response = client.post(
        reverse("campaign-edit", args=[campaign.pk]), {"name": "Renamed", "description": ""}
    )
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Renamed"
    assert CampaignTransition.objects.filter(reason__startswith="Changed: name").exists()


def test_a_running_campaign_may_only_raise_its_budget(client, marketer):
    campaign = active_campaign(kind=Campaign.Kind.EARNING, starts_at=timezone.now())
    Campaign.objects.filter(pk=campaign.pk).update(budget_points=1000)
    url = reverse("campaign-edit", args=[campaign.pk])
    base = {"name": campaign.name, "description": "", "ends_at": local(campaign.ends_at)}
    base.update({"budget_money": "", "member_cap_points": ""})
    response = client.post(url, {**base, "budget_points": "500"})
    assert response.status_code == 400
    assert "can only be raised" in response.content.decode()
    response = client.post(url, {**base, "budget_points": "2000"})
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert campaign.budget_points == 2000
    # A forged segment change is refused, not ignored.
    response = client.post(url, {**base, "budget_points": "2000", "segment": "1"})
    assert response.status_code == 400 and "segment" in response.content.decode()


# -- the lifecycle's buttons ---------------------------------------------------------------------


def press(client, campaign, action, reason="Because"):
    return client.post(
        reverse("campaign-action", args=[campaign.pk, action]), {f"{action}-reason": reason}
    )


def test_each_button_moves_the_campaign_and_records_who_and_why(client, marketer):
    campaign = with_templates(message_draft())
    html = client.get(reverse("campaign-edit", args=[campaign.pk])).content.decode()
    assert f'action="/campaigns/{campaign.pk}/actions/schedule/"' in html
    assert "data-confirm=" in html
    steps = [
        ("schedule", "scheduled"),
        ("unschedule", "draft"),
        ("schedule", "scheduled"),
        ("activate", "active"),
        ("pause", "paused"),
        ("resume", "active"),
        ("end", "ended"),
        ("archive", "archived"),
    ]
    for action, status in steps:
        response = press(client, campaign, action, reason=f"Step {action}")
        assert response.status_code == 302
        campaign.refresh_from_db()
        assert campaign.status == status, action
        last = CampaignTransition.objects.filter(campaign=campaign).order_by("-id").first()
        assert (last.to_status, last.actor, last.reason) == (status, marketer, f"Step {action}")
    assert campaign.audience is not None


def test_a_button_needs_a_reason_and_a_status_that_allows_it(client, marketer):
    campaign = message_draft()  # no template: not ready
    response = press(client, campaign, "schedule", reason="")
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("give a reason" in m for m in messages)
    response = press(client, campaign, "schedule")
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("needs a message template" in m for m in messages)
    response = press(client, campaign, "pause")
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("cannot take the step" in m for m in messages)
    campaign.refresh_from_db()
    assert campaign.status == "draft" and not CampaignTransition.objects.exists()
    assert press(client, campaign, "explode").status_code == 404


def test_a_draft_shows_what_it_still_needs_before_scheduling(client, marketer):
    campaign = message_draft()
    html = client.get(reverse("campaign-edit", args=[campaign.pk])).content.decode()
    assert "Before it can be scheduled" in html and "needs a message template" in html


# -- templates, offers, rules --------------------------------------------------------------------


def test_a_template_is_added_edited_and_deleted_on_a_draft(client, marketer):
    campaign = message_draft()
    url = reverse("campaign-template-save", args=[campaign.pk])
    data = {"channel": "sms", "language": "en", "subject": "", "body": "Hi {{ first_name }}"}
    assert client.post(url, data).status_code == 302
    template = MessageTemplate.objects.get(campaign=campaign)
    assert AuditEntry.objects.filter(action="message_template_create").exists()
    assert client.post(url, {**data, "template": template.pk, "body": "Hey"}).status_code == 302
    template.refresh_from_db()
    assert template.body == "Hey"
    html = client.get(reverse("campaign-edit", args=[campaign.pk]), {"template": template.pk})
    assert "Edit the template" in html.content.decode()
    response = client.post(reverse("campaign-template-delete", args=[campaign.pk, template.pk]))
    assert response.status_code == 302 and not MessageTemplate.objects.exists()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{% load static %}Hi", "does not compile"),
        ("{% url 'home' %}", "does not compile"),
    ],
)
def test_a_template_that_does_not_compile_is_a_form_error(client, marketer, body, message):
    campaign = message_draft()
    response = client.post(
        reverse("campaign-template-save", args=[campaign.pk]),
        {"channel": "email", "language": "en", "subject": "S", "body": body},
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not MessageTemplate.objects.exists()


def test_a_second_template_for_the_same_channel_and_language_is_refused(client, marketer):
    campaign = with_templates(message_draft())
    response = client.post(
        reverse("campaign-template-save", args=[campaign.pk]),
        {"channel": "email", "language": "en", "subject": "S", "body": "B"},
    )
    assert response.status_code == 400
    assert "already" in response.content.decode()
    assert campaign.message_templates.count() == 2


def test_templates_of_a_scheduled_campaign_cannot_change(client, marketer):
    campaign = with_templates(message_draft())
    campaign_schedule(campaign=campaign, actor=marketer)
    template = campaign.message_templates.first()
    response = client.post(
        reverse("campaign-template-save", args=[campaign.pk]),
        {"channel": "sms", "language": "en", "subject": "", "body": "B", "template": ""},
    )
    assert response.status_code == 400 and "Only a draft" in response.content.decode()
    client.post(reverse("campaign-template-delete", args=[campaign.pk, template.pk]))
    assert campaign.message_templates.count() == 2


def test_offers_are_added_and_removed_on_a_draft_offer_campaign(client, marketer):
    campaign = Campaign.objects.create(name="Offers", kind="offer")
    coffee = RewardFactory()
    url = reverse("campaign-offer-add", args=[campaign.pk])
    data = {"reward": coffee.pk, "rule": "top_category", "category": "coffee", "priority": "10"}
    assert client.post(url, {**data, "days": ""}).status_code == 302
    offer = CampaignOffer.objects.get()
    assert (offer.rule, offer.category, offer.priority) == ("top_category", "coffee", 10)
    response = client.post(url, {**data, "category": ""})
    assert response.status_code == 400 and "needs a category" in response.content.decode()
    response = client.post(reverse("campaign-offer-delete", args=[campaign.pk, offer.pk]))
    assert response.status_code == 302 and not CampaignOffer.objects.exists()
    assert AuditEntry.objects.filter(action="campaign_offer_delete").exists()


def test_an_earning_campaigns_rules_link_to_the_rule_editor(client, marketer):
    campaign = Campaign.objects.create(name="Earn", kind="earning")
    rule = EarningRuleFactory(campaign=campaign, name="Triple coffee")
    html = client.get(reverse("campaign-edit", args=[campaign.pk])).content.decode()
    assert "Triple coffee" in html
    assert f"/{rule.pk}/" in html  # the rule editor's page, or the admin's
    assert f"campaign={campaign.pk}" in html


# -- the message preview -------------------------------------------------------------------------


def test_the_preview_renders_the_message_for_a_member_in_their_language(client, marketer):
    campaign = with_templates(message_draft())
    member = MemberFactory(first_name="Joost", last_name="Smit", locale="nl")
    url = reverse("campaign-preview", args=[campaign.pk])
    html = client.get(url, {"member": member.pk, "channel": "email"}).content.decode()
    assert "Hallo Joost, u hebt 0 punten." in html
    html = client.get(url, {"member": member.pk, "channel": "email", "language": "en"})
    assert "Hello Joost, you have 0 points." in html.content.decode()
    html = client.get(url, {"member": member.email, "channel": "email"}).content.decode()
    assert "Hallo Joost" in html
    assert_no_unmarked_inline_code(html, None)


def test_the_preview_lets_the_marketer_choose_among_several_members(client, marketer):
    campaign = with_templates(message_draft())
    MemberFactory(first_name="Joost", last_name="Smit")
    MemberFactory(first_name="Joost", last_name="Bakker")
    url = reverse("campaign-preview", args=[campaign.pk])
    html = client.get(url, {"member": "joost", "channel": "email"}).content.decode()
    assert "Several members match" in html and "Bakker" in html and "Smit" in html
    html = client.get(url, {"member": "nobody-like-this", "channel": "email"}).content.decode()
    assert "No member found" in html
    member = MemberFactory()
    html = client.get(url, {"member": member.pk, "channel": "sms"}).content.decode()
    assert "no message template for this channel" in html


# -- simulation ----------------------------------------------------------------------------------


def test_a_draft_earning_campaign_is_simulated_as_a_job(
    client, marketer, django_capture_on_commit_callbacks
):
    EarningRuleFactory(rate=Decimal(1))  # the programme's base rate
    campaign = Campaign.objects.create(name="Bonus", kind="earning", control_basis_points=0)
    EarningRuleFactory(campaign=campaign, kind="bonus", bonus_points=10, name="Bonus 10")
    member = MemberFactory()
    yesterday = timezone.now() - timedelta(days=1)
    buy(member, "S1", at=yesterday, amount="20.00")
    buy(member, "S2", at=yesterday, amount="5.00")
    today = timezone.localdate()
    data = {
        "start": (today - timedelta(days=7)).isoformat(),
        "end": (today - timedelta(days=1) + timedelta(days=1)).isoformat(),
    }
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("campaign-simulate", args=[campaign.pk]), data)
    assert response.status_code == 302 and response["Location"].startswith("/jobs/")
    job = BackgroundJob.objects.get()
    assert job.status == "done", job.error
    assert job.result["points"] == 20 and job.result["members_reached"] == 1
    assert (job.done, job.total) == (2, 2)
    html = client.get(response["Location"]).content.decode()
    assert "Points the campaign" in html and "Bonus 10" in html


def test_a_simulation_needs_a_valid_period(client, marketer):
    campaign = Campaign.objects.create(name="Bonus", kind="earning")
    today = timezone.localdate()
    data = {"start": today.isoformat(), "end": (today - timedelta(days=5)).isoformat()}
    response = client.post(reverse("campaign-simulate", args=[campaign.pk]), data)
    assert response.status_code == 400
    assert "The end must be after the start" in response.content.decode()
    assert not BackgroundJob.objects.exists()


# -- results -------------------------------------------------------------------------------------


@pytest.fixture
def measured(db):
    """A running earning campaign of four treated and two control members, with purchases in its
    window and its results stored."""
    start = timezone.now() - timedelta(days=5)
    members = [MemberFactory() for _ in range(6)]
    salt = salt_splitting(members[:4], members[4:])
    campaign = active_campaign(
        kind=Campaign.Kind.EARNING,
        starts_at=start,
        ends_at=start + timedelta(days=30),
        control_basis_points=5000,
        salt=salt,
    )
    for n, member in enumerate(members):
        buy(member, f"R{n}", at=start + timedelta(days=1 + n % 3), amount=f"{10 * (n + 1)}.00")
    campaign_results_refresh(campaign=campaign)
    return campaign, members


def test_the_results_page_compares_treated_and_control(
    client, marketer, measured, django_assert_max_num_queries
):
    campaign, _members = measured
    with django_assert_max_num_queries(12):
        response = client.get(reverse("campaign-results", args=[campaign.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Treated members" in html and "Revenue per member" in html and "p-value" in html
    assert "Sample ratio" in html or "Sample-ratio" in html
    chart = re.search(r'id="spend-by-day" type="application/json">(.*?)</script>', html, re.S)
    config = json.loads(chart.group(1))
    treated, control = config["data"]["datasets"]
    # Treated spent 10+20+30+40 = 100 over 4 members, control 50+60 = 110 over 2.
    assert treated["data"][-1] == 25.0 and control["data"][-1] == 55.0
    assert_no_unmarked_inline_code(html, None)


def test_the_results_page_of_a_campaign_not_measured_yet(client, marketer):
    campaign = message_draft()
    html = client.get(reverse("campaign-results", args=[campaign.pk])).content.decode()
    assert "No results yet" in html
    # Nothing to measure before it starts: no button.
    assert reverse("campaign-results-refresh", args=[campaign.pk]) not in html


def test_refresh_now_runs_the_results_as_a_job(
    client, marketer, measured, django_capture_on_commit_callbacks
):
    campaign, _members = measured
    CampaignResult.objects.all().delete()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("campaign-results-refresh", args=[campaign.pk]))
    assert response.status_code == 302
    assert CampaignResult.objects.filter(campaign=campaign).exists()
    assert "See the results" in client.get(response["Location"]).content.decode()


def test_spend_by_day_is_one_query_with_every_day_of_the_window(
    measured, django_assert_num_queries
):
    campaign, _members = measured
    with django_assert_num_queries(1):
        days = campaign_spend_by_day(campaign)
    assert len(days) == 6  # the start's day to today
    assert sum(d.treated for d in days) == Decimal("100.00")
    assert sum(d.control for d in days) == Decimal("110.00")
    series = cumulative_per_member(days, treated_n=4, control_n=2)
    assert series[-1][1:] == (25.0, 55.0)
    assert cumulative_per_member(days, treated_n=0, control_n=0)[-1][1:] == (None, None)


def test_a_message_campaigns_results_show_its_funnel(client, marketer):
    member_with("sms")
    MemberFactory()  # no consent
    campaign = message_campaign(channels=("sms",))
    campaign_send_start(campaign=campaign, fan_out=False)
    messages_send(message_ids=messages_due(campaign=campaign))
    html = client.get(reverse("campaign-results", args=[campaign.pk])).content.decode()
    assert "Messages" in html and "No consent" in html


# -- lists and query bounds ----------------------------------------------------------------------


@pytest.mark.parametrize("count", [3, 30])
def test_the_list_filters_and_answers_in_a_bounded_number_of_queries(
    client, marketer, count, django_assert_max_num_queries
):
    segment = Segment.objects.create(name="Everyone")
    for n in range(count):
        Campaign.objects.create(name=f"Draft {n}", kind="message", segment=segment)
    Campaign.objects.create(
        name="The offer", kind="offer", status="ended", starts_at=timezone.now()
    )
    with django_assert_max_num_queries(8):
        response = client.get(reverse("campaign-list"))
    assert f"Draft {count - 1}" in response.content.decode()
    html = client.get(reverse("campaign-list"), {"kind": "offer"}).content.decode()
    assert "The offer" in html and "Draft 0" not in html
    html = client.get(reverse("campaign-list"), {"status": "draft"}).content.decode()
    assert "The offer" not in html and "Draft 1" in html
    assert_no_unmarked_inline_code(html, None)


@pytest.mark.parametrize("count", [1, 6])
def test_the_builder_answers_in_a_bounded_number_of_queries(
    client, marketer, count, django_assert_max_num_queries
):
    campaign = message_draft()
    pairs = [(channel, lang) for channel in ("email", "sms", "push") for lang in ("en", "nl")]
    for channel, language in pairs[:count]:
        MessageTemplate.objects.create(
            campaign=campaign, channel=channel, language=language, body="Hi"
        )
    for _ in range(count):
        CampaignTransition.objects.create(campaign=campaign, from_status="draft", to_status="draft")
    offers = Campaign.objects.create(name="Offers", kind="offer")
    for _ in range(count):
        CampaignOffer.objects.create(campaign=offers, reward=RewardFactory(), rule="fallback")
    for target in (campaign, offers):
        with django_assert_max_num_queries(16):
            response = client.get(reverse("campaign-edit", args=[target.pk]))
        assert response.status_code == 200
