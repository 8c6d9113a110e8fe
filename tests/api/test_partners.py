"""A partner key reaches only the members who presented their card to it (issue 12, item 11):
a purchase by card number or an enrolment through it links them. For anyone else it gets the
answer for a member that does not exist."""

from decimal import Decimal

import pytest

from campaigns.models import EngagementEvent
from ledger import services as ledger_services
from loyalty_site.models import PartnerLink
from members import services as member_services
from rewards.models import Redemption
from tests.api.conftest import client_for
from tests.api.factories import member_with
from tests.campaigns.factories import EarningRuleFactory, EngagementKindFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def partner(make_channel):
    channel, key = make_channel("partner-a", kind="partner")
    return channel, client_for(key)


@pytest.fixture
def other_partner(make_channel):
    channel, key = make_channel("partner-b", kind="partner")
    return channel, client_for(key)


def buy_by_card(client, member, external_id="P-1"):
    return client.post(
        "/api/v1/purchases/",
        {
            "card_number": member.cards.get().number,
            "external_id": external_id,
            "amount": "10.00",
        },
        format="json",
    )


def assert_member_not_found(response):
    assert response.status_code == 404, response.json()
    assert response.json()["code"] == "member_not_found"


def test_purchase_by_card_links_the_member_to_that_partner_only(partner, other_partner, member):
    EarningRuleFactory(rate=Decimal(1))
    channel, client = partner
    assert buy_by_card(client, member).status_code == 201
    assert buy_by_card(client, member, external_id="P-2").status_code == 201
    assert list(PartnerLink.objects.values_list("channel", "member")) == [(channel.pk, member.pk)]
    assert client.get(f"/api/v1/members/{member.public_id}/").status_code == 200
    assert_member_not_found(other_partner[1].get(f"/api/v1/members/{member.public_id}/"))


def test_a_partner_records_by_member_id_only_for_a_linked_member(partner, member):
    channel, client = partner
    by_id = {"member": str(member.public_id), "external_id": "P-9", "amount": "10.00"}
    assert_member_not_found(client.post("/api/v1/purchases/", by_id, format="json"))
    assert not member.purchases.exists()
    assert buy_by_card(client, member).status_code == 201
    assert client.post("/api/v1/purchases/", by_id, format="json").status_code == 201
    assert member.purchases.count() == 2


def test_first_party_purchase_links_nobody(api, member):
    assert buy_by_card(api, member).status_code == 201
    assert not PartnerLink.objects.exists()


def test_enrolment_through_a_partner_links_the_member(partner):
    channel, client = partner
    enrolled = client.post(
        "/api/v1/members/",
        {"email": "new@example.nl", "first_name": "Nina", "consents": {"partner_sharing": True}},
        format="json",
    )
    assert enrolled.status_code == 201, enrolled.json()
    link = PartnerLink.objects.get()
    assert (link.channel, str(link.member.public_id)) == (channel, enrolled.json()["id"])
    assert client.get(f"/api/v1/members/{enrolled.json()['id']}/").json()["email"] == (
        "new@example.nl"
    )


def test_members_retrieve(partner, member):
    _channel, client = partner
    url = f"/api/v1/members/{member.public_id}/"
    assert_member_not_found(client.get(url))
    buy_by_card(client, member)
    body = client.get(url).json()
    assert body["id"] == str(member.public_id)
    assert body["email"] == ""  # no consent to sharing with partners
    assert body["first_name"] == member.first_name


def test_members_retrieve_shows_email_with_consent(partner, member):
    _channel, client = partner
    buy_by_card(client, member)
    member_services.consent_grant(member=member, purpose="partner_sharing")
    assert client.get(f"/api/v1/members/{member.public_id}/").json()["email"] == member.email


def test_cards_retrieve(partner, member):
    _channel, client = partner
    url = f"/api/v1/cards/{member.cards.get().number}/"
    assert_member_not_found(client.get(url))
    buy_by_card(client, member)
    response = client.get(url)
    assert response.status_code == 200
    assert response.json()["id"] == str(member.public_id)
    assert response.json()["email"] == ""


def test_ledger_shows_only_the_partners_entries(partner, member):
    EarningRuleFactory(rate=Decimal(1))
    channel, client = partner
    url = f"/api/v1/members/{member.public_id}/ledger/"
    assert_member_not_found(client.get(url))
    ledger_services.points_earn(member=member, points=7, channel="webshop", reason="elsewhere")
    buy_by_card(client, member)
    entries = client.get(url).json()["results"]
    assert entries and {entry["channel"] for entry in entries} == {channel.name}


def test_rewards_list(partner, member):
    _channel, client = partner
    url = f"/api/v1/members/{member.public_id}/rewards/"
    assert_member_not_found(client.get(url))
    buy_by_card(client, member)
    assert client.get(url).status_code == 200


def test_events(partner, member):
    EngagementKindFactory(code="review", points=25)
    _channel, client = partner
    body = {"kind": "review", "member": str(member.public_id), "reference": "r-1"}
    assert_member_not_found(client.post("/api/v1/events/", body, format="json"))
    assert not EngagementEvent.objects.exists()
    buy_by_card(client, member)
    response = client.post("/api/v1/events/", body, format="json")
    assert response.status_code == 201, response.json()
    assert EngagementEvent.objects.get().member == member


def test_redemption_by_member_id_is_refused_by_card_allowed_when_linked(partner, member):
    _channel, client = partner
    by_id = {"member": str(member.public_id), "points": 10}
    by_card = {"card_number": member.cards.get().number, "points": 10}
    assert_member_not_found(client.post("/api/v1/redemptions/", by_card, format="json"))
    buy_by_card(client, member)
    refused = client.post("/api/v1/redemptions/", by_id, format="json")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    response = client.post("/api/v1/redemptions/", by_card, format="json")
    assert response.status_code == 201, response.json()
    assert Redemption.objects.get().member == member


def test_first_party_redeems_by_member_id_or_card(api):
    member = member_with(points=100)
    by_id = api.post(
        "/api/v1/redemptions/", {"member": str(member.public_id), "points": 10}, format="json"
    )
    by_card = api.post(
        "/api/v1/redemptions/",
        {"card_number": member.cards.get().number, "points": 10},
        format="json",
    )
    assert (by_id.status_code, by_card.status_code) == (201, 201)
    neither = api.post("/api/v1/redemptions/", {"points": 10}, format="json")
    assert neither.status_code == 400
