"""The points ledger page (/ledger/) in Chromium: customer service finds a member's entries."""

import re

import pytest
from playwright.sync_api import expect

from ledger import services
from members.services import card_issue
from tests.factories import MemberFactory


@pytest.mark.django_db(transaction=True)
def test_an_agent_finds_a_members_entries_by_card_and_opens_the_member(page, sign_in):
    anna = MemberFactory(first_name="Anna", last_name="de Vries")
    bob = MemberFactory(first_name="Bob", last_name="Jansen")
    card = card_issue(member=anna)
    services.points_earn(member=anna, points=120, reference="till-7", channel="pos")
    services.points_earn(member=bob, points=55, reference="till-8", channel="pos")
    sign_in("Customer service")

    page.goto("/")
    page.get_by_role("link", name="Points ledger").click()
    expect(page.locator("h1")).to_have_text("Points ledger")
    expect(page.locator("#ledger-entries tbody tr")).to_have_count(2)

    spaced = " ".join(card.number[i : i + 4] for i in range(0, len(card.number), 4))
    page.get_by_label("Member", exact=True).fill(spaced)
    page.get_by_role("button", name="Search").click()
    rows = page.locator("#ledger-entries tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("+120")
    expect(rows.first).to_contain_text("till-7")

    page.get_by_label("Member", exact=True).fill("")
    page.get_by_label("Reference", exact=True).fill("till-8")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Bob Jansen")

    rows.first.get_by_role("link", name="Bob Jansen").click()
    expect(page).to_have_url(re.compile(rf"/members/{bob.pk}/$"))
