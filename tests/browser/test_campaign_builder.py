"""The campaign builder in Chromium: a message campaign on a segment with a 10 % control group,
a template, its preview for a member, and scheduling it."""

import re
from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import Campaign, CampaignTransition, Segment
from tests.factories import MemberFactory


def local(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M")


def test_a_marketer_creates_previews_and_schedules_a_message_campaign(page, sign_in):
    Segment.objects.create(name="Everyone", definition={"all": []})
    member = MemberFactory(first_name="Femke", last_name="Jansen", locale="en")
    user = sign_in("Marketing")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/campaigns/")
    page.get_by_role("link", name="New campaign").click()
    start = timezone.now() + timedelta(days=2)
    page.fill("#id_name", "Winter news")
    page.select_option("#id_kind", "message")
    page.select_option("#id_segment", label="Everyone")
    page.fill("#id_starts_at", local(start))
    page.fill("#id_ends_at", local(start + timedelta(days=7)))
    page.fill("#id_control_percent", "10")
    page.get_by_role("button", name="Create draft").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Draft")
    campaign = Campaign.objects.get(name="Winter news")
    assert campaign.control_basis_points == 1000

    template = page.locator("#template-form")
    template.locator("#id_channel").select_option("email")
    template.locator("#id_language").select_option("en")
    template.locator("#id_subject").fill("Winter at the shop")
    template.locator("#id_body").fill("Hello {{ first_name }}, you have {{ balance }} points.")
    template.get_by_role("button", name="Save template").click()
    expect(page.locator("#templates table")).to_contain_text("Winter at the shop")

    page.fill("#id_member", str(member.pk))
    page.locator("#preview-form").get_by_role("button", name="Preview").click()
    expect(page.get_by_test_id("preview-body")).to_have_text("Hello Femke, you have 0 points.")

    page.fill("#id_schedule-reason", "Approved by the team")
    page.get_by_role("button", name="Schedule").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Scheduled")
    transition = CampaignTransition.objects.get(campaign=campaign)
    assert (transition.to_status, transition.actor, transition.reason) == (
        "scheduled",
        user,
        "Approved by the team",
    )


def test_the_builder_in_dutch(page, sign_in):
    campaign = Campaign.objects.create(name="Nieuws", kind="message")
    sign_in("Marketing", language="nl")
    page.goto(f"/campaigns/{campaign.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign.pk}/$"))
    expect(page.locator("#template-form")).to_be_visible()
