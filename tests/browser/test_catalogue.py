"""Marketing's catalogue in Chromium: edit a reward's price and see it in the list; open a
challenge; the pages in Dutch."""

import re

from playwright.sync_api import expect

from tests.campaigns.factories import ChallengeFactory, EngagementKindFactory
from tests.rewards.factories import ProductRewardFactory, TierFactory


def test_a_marketer_edits_a_rewards_price_and_sees_it_in_the_list(page, sign_in):
    reward = ProductRewardFactory(name_en="Tote bag", points=750, stock=40)
    TierFactory(name="Gold")
    sign_in("Marketing")
    page.goto("/")
    page.locator("nav.sidebar").get_by_role("link", name="Rewards").click()
    row = page.locator(f'tr[data-reward="{reward.pk}"]')
    expect(row).to_contain_text("750")
    row.get_by_role("link", name="Tote bag").click()
    expect(page.locator("h1")).to_contain_text("Tote bag")
    page.get_by_role("link", name="Edit").click()
    page.fill("#id_points", "700")
    page.locator("fieldset.tier-prices").get_by_label("Gold").fill("650")
    page.fill("#id_reason", "Autumn price")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".message")).to_contain_text("Tote bag is saved.")
    expect(page).to_have_url(re.compile(rf"/rewards/{reward.pk}/$"))
    page.locator("nav.sidebar").get_by_role("link", name="Rewards").click()
    row = page.locator(f'tr[data-reward="{reward.pk}"]')
    expect(row).to_contain_text("700")
    expect(row).to_contain_text("Gold: 650")


def test_a_refused_save_shows_the_field_error(page, sign_in):
    reward = ProductRewardFactory(name_en="Mug", points=300)
    sign_in("Marketing")
    page.goto(f"/rewards/{reward.pk}/edit/")
    page.fill("#id_points", "0")
    page.fill("#id_reason", "Oops")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".field.invalid")).to_have_count(1)
    expect(page.locator("#id_points")).to_have_value("0")


def test_a_marketer_opens_a_challenge(page, sign_in):
    kind = EngagementKindFactory(code="review", name="Product review")
    challenge = ChallengeFactory(name="Five reviews", goal="event_count", event_kind=kind)
    sign_in("Marketing")
    page.goto("/")
    page.locator("nav.sidebar").get_by_role("link", name="Challenges").click()
    row = page.locator(f'tr[data-challenge="{challenge.pk}"]')
    expect(row).to_contain_text("Product review")
    row.get_by_role("link", name="Five reviews").click()
    expect(page.locator("h1")).to_contain_text("Five reviews")
    expect(page.get_by_label("Number of engagement events")).to_be_checked()
    page.locator("nav.sidebar").get_by_role("link", name="Engagement kinds").click()
    expect(page.locator('tr[data-kind="review"]')).to_contain_text("Product review")


def test_the_catalogue_in_dutch(page, sign_in):
    reward = ProductRewardFactory(name_en="Tote bag", name_nl="Draagtas")
    sign_in("Marketing", language="nl")
    page.goto("/rewards/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator(f'tr[data-reward="{reward.pk}"]')).to_contain_text("Draagtas")
    page.goto("/challenges/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")


def test_customer_service_reads_the_catalogue_without_edit_buttons(page, sign_in):
    reward = ProductRewardFactory(name_en="Tote bag")
    sign_in("Customer service")
    page.goto(f"/rewards/{reward.pk}/")
    expect(page.locator("h1")).to_contain_text("Tote bag")
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.locator("nav.sidebar")).not_to_contain_text("Challenges")
