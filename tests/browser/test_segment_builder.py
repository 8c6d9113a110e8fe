"""The segment builder in Chromium: the count follows the tree as a marketer edits it."""

from playwright.sync_api import expect

from campaigns.models import Segment
from members.models import Consent, Tier
from members.services import consent_grant
from tests.factories import MemberFactory


def members():
    gold = Tier.objects.create(name="Gold", rank=50, threshold=5000)
    for n in range(3):
        member = MemberFactory(first_name=f"Goldie{n}", tier=gold)
        if n == 0:
            consent_grant(member=member, purpose=Consent.Purpose.MARKETING_EMAIL, channel="app")
    MemberFactory.create_batch(2, first_name="Plain")


def test_a_marketer_builds_a_segment_and_sees_the_count_change(page, sign_in):
    members()
    sign_in("Marketing")
    page.goto("/segments/new/")
    count = page.get_by_test_id("segment-count")
    expect(count).to_have_text("5")  # an empty "all" is every member
    page.get_by_role("button", name="+ Condition").click()
    # A new row starts as a consent to marketing e-mail: one member has it.
    expect(count).to_have_text("1")
    row = page.locator(".seg-condition").last
    row.locator("select").first.select_option("tier")
    row.get_by_label("Gold").check()
    expect(count).to_have_text("3")
    expect(page.locator("ol.sample li")).to_have_count(3)
    page.fill("#id_name", "Gold members")
    page.get_by_role("button", name="Create segment").click()
    expect(page.locator("h1")).to_have_text("Gold members")
    segment = Segment.objects.get(name="Gold members")
    assert segment.definition == {"all": [{"condition": "tier", "in": ["Gold"]}]}


def test_the_builder_in_dutch(page, sign_in):
    sign_in("Marketing", language="nl")
    page.goto("/segments/new/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("#segment-preview .figure").first).to_be_visible()
    page.locator(".seg-add button").first.click()
    expect(page.locator(".seg-condition")).to_have_count(1)
