"""The member page in Chromium: find a member by card, adjust points, the API agrees; a marketer
may look but not adjust; the page in Dutch."""

import re

from django.urls import reverse
from playwright.sync_api import expect

from ledger import services as ledger_services
from ledger.models import Entry
from loyalty_site.models import SCOPES, Channel, ChannelAPIKey
from members.services import card_issue, member_enrol


def _member_with_card(points: int = 100):
    member = member_enrol(email="lotte@example.nl", first_name="Lotte", last_name="Bakker")
    card = card_issue(member=member)
    ledger_services.points_earn(member=member, points=points, reason="welcome")
    return member, card


def test_an_agent_finds_a_member_by_card_and_adjusts_points(page, sign_in, live_server):
    member, card = _member_with_card(100)
    agent = sign_in("Customer service")
    page.goto("/")
    spaced = " ".join(card.number[i : i + 4] for i in range(0, 16, 4))
    page.fill("form.search input[name=q]", spaced)
    page.press("form.search input[name=q]", "Enter")
    expect(page).to_have_url(re.compile(rf"/members/{member.pk}/$"))
    expect(page.locator("h1")).to_contain_text("Lotte Bakker")
    expect(page.locator("[data-figure=balance]")).to_have_text("100")

    page.fill("#id_adjust-points", "50")
    page.fill("#id_adjust-reason", "receipt not scanned")
    page.click("#adjust-form button[type=submit]")
    expect(page.locator("p.message.success")).to_contain_text("+50 points posted")
    expect(page.locator("[data-figure=balance]")).to_have_text("150")
    entry = Entry.objects.get(kind=Entry.Kind.ADJUST)
    assert (entry.amount, entry.actor_id, entry.reason) == (50, agent.pk, "receipt not scanned")

    # The channel API shows the same balance.
    channel = Channel.objects.create(name="till", kind=Channel.Kind.POS, scopes=list(SCOPES))
    _key, key = ChannelAPIKey.objects.create_key(name="till", channel=channel)
    answer = page.request.get(
        f"{live_server.url}/api/v1/members/{member.public_id}/",
        headers={"Authorization": f"Api-Key {key}"},
    )
    assert answer.status == 200
    assert answer.json()["balance"] == 150

    # The ledger tab loads in place (htmx) and shows the adjustment with its reason.
    page.click("nav.tabs a:has-text('Points ledger')")
    expect(page).to_have_url(re.compile(rf"/members/{member.pk}/ledger/$"))
    expect(page.locator("#ledger-entries")).to_contain_text("receipt not scanned")


def test_a_marketer_sees_no_adjust_form_and_a_forged_post_is_refused(page, sign_in, live_server):
    member, _card = _member_with_card(100)
    sign_in("Marketing")
    page.goto(f"/members/{member.pk}/")
    expect(page.locator("h1")).to_contain_text("Lotte Bakker")
    expect(page.locator("#adjust-form")).to_have_count(0)
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    forged = page.request.post(
        f"{live_server.url}{reverse('member-page-adjust', args=[member.pk])}",
        form={"adjust-points": "5000", "adjust-reason": "forged"},
        headers={"X-CSRFToken": token},
    )
    assert forged.status == 403
    assert "Not allowed" in forged.text()  # the permission check, not the CSRF one
    assert not Entry.objects.filter(kind=Entry.Kind.ADJUST).exists()


def test_the_member_page_in_dutch(page, sign_in):
    member, card = _member_with_card(100)
    sign_in("Customer service", language="nl")
    page.goto(f"/members/{member.pk}/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("#cards-panel")).to_contain_text(card.number)
    expect(page.locator("[data-figure=balance]")).to_have_text("100")
