"""Customer service's shipping list and redemption pages in Chromium (issue 14): an agent marks a
parcel shipped with a tracking code and a reason and sees it in the list; a reservation is
cancelled from its page; the pages in Dutch. Screenshots go to /tmp/cs-*.png."""

import re

import pytest
from playwright.sync_api import expect

from ledger import services as ledger_services
from rewards import services
from tests.factories import MemberFactory
from tests.rewards.factories import ProductRewardFactory, RewardFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _member(points: int, **kwargs):
    member = MemberFactory(**kwargs)
    ledger_services.points_earn(member=member, points=points, reason="test")
    return member


def test_an_agent_marks_a_parcel_shipped_and_sees_it_in_the_list(page, sign_in):
    reward = ProductRewardFactory(name_en="Tote bag", name_nl="Draagtas", points=100, stock=10)
    anna = _member(500, first_name="Anna", last_name="de Vries")
    parcel = services.redemption_redeem(
        member=anna, reward=reward, shipping_address="Damrak 1, 1012 LG Amsterdam"
    )
    sign_in("Customer service")

    page.goto("/")
    page.locator("nav.sidebar").get_by_role("link", name="Shipping").click()
    expect(page.locator("h1")).to_have_text("Shipping")
    row = page.locator(f'tr[data-redemption="{parcel.pk}"]')
    expect(row).to_contain_text("Anna de Vries")
    expect(row).to_contain_text("Damrak 1, 1012 LG Amsterdam")
    expect(row.locator("td.status")).to_contain_text("To ship")
    page.screenshot(path="/tmp/cs-shipping.png", full_page=True)

    row.get_by_text("Change status").click()
    row.get_by_label("New status").select_option("shipped")
    row.get_by_label("Tracking code").fill("3SABC123")
    row.get_by_label("Reason").fill("Handed to PostNL")
    row.get_by_role("button", name="Save").click()

    expect(page.locator(".message.success")).to_contain_text("Shipped")
    row = page.locator(f'tr[data-redemption="{parcel.pk}"]')
    expect(row.locator("td.status")).to_contain_text("Shipped")
    expect(row.locator("td.tracking")).to_have_text("3SABC123")

    page.get_by_label("Shipping status").select_option("to_ship")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator(f'tr[data-redemption="{parcel.pk}"]')).to_have_count(0)

    # The redemption's page tells who did it and why; the member link opens the member page.
    page.goto(f"/redemptions/{parcel.pk}/")
    expect(page.locator("#redemption-history")).to_contain_text("Handed to PostNL")
    page.screenshot(path="/tmp/cs-redemption.png", full_page=True)
    page.locator("#redemption-facts").get_by_role("link", name="Anna de Vries").click()
    expect(page).to_have_url(re.compile(rf"/members/{anna.pk}/$"))


def test_an_agent_finds_a_reservation_and_cancels_it_with_a_reason(page, sign_in):
    bob = _member(500, first_name="Bob", last_name="Jansen", email="bob@example.nl")
    reservation = services.redemption_reserve(member=bob, reward=RewardFactory(name_en="Cinema"))
    sign_in("Customer service")

    page.goto("/")
    page.locator("nav.sidebar").get_by_role("link", name="Redemptions").click()
    page.get_by_label("Member", exact=True).fill("bob@example.nl")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#redemptions tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Reserved")
    page.screenshot(path="/tmp/cs-redemptions.png", full_page=True)

    rows.first.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(rf"/redemptions/{reservation.pk}/$"))
    # The browser refuses an empty reason; the server would too (tests/rewards).
    page.locator("#cancel-form").get_by_label("Reason").fill("Member changed their mind")
    page.get_by_role("button", name="Cancel the reservation").click()
    expect(page.locator("h1 .badge")).to_have_text("Cancelled")
    expect(page.locator("#redemption-history")).to_contain_text("Member changed their mind")
    expect(page.locator("#cancel-form")).to_have_count(0)


def test_the_shipping_and_redemption_pages_in_dutch(page, sign_in):
    reward = ProductRewardFactory(name_en="Tote bag", name_nl="Draagtas", points=100, stock=10)
    parcel = services.redemption_redeem(member=_member(500), reward=reward)
    sign_in("Customer service", language="nl")

    page.goto("/shipping/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("h1")).to_have_text("Verzending")
    expect(page.locator(f'tr[data-redemption="{parcel.pk}"]')).to_contain_text("Draagtas")
    page.screenshot(path="/tmp/cs-shipping-nl.png", full_page=True)
    page.goto("/redemptions/")
    expect(page.locator("h1")).to_have_text("Inwisselingen")
