"""views/base.py: keys see and write only what their scope allows (no 2xx on another channel's
objects), and every other path under /api/ is a JSON 404."""

from decimal import Decimal

import pytest

from ledger.models import Purchase
from rewards.models import Redemption
from tests.api.conftest import client_for
from tests.campaigns.factories import EarningRuleFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(make_channel, member):
    EarningRuleFactory(rate=Decimal(1))
    _own, own_key = make_channel("shop-ams", stores=["AMS-01"])
    _other, other_key = make_channel("shop-rtm", stores=["RTM-01"])
    _partner, partner_key = make_channel("partner-a", kind="partner")
    _partner_b, partner_b_key = make_channel("partner-b", kind="partner")
    own, other = client_for(own_key), client_for(other_key)
    partner, partner_b = client_for(partner_key), client_for(partner_b_key)

    # A partner knows the member by the card they present (and is linked to them by it).
    card_number = member.cards.get().number

    def who(client):
        if client in (partner, partner_b):
            return {"card_number": card_number}
        return {"member": str(member.public_id)}

    def buy(client, external_id):
        return client.post(
            "/api/v1/purchases/",
            {**who(client), "external_id": external_id, "amount": "10.00"},
            format="json",
        ).json()["id"]

    def reserve(client):
        return client.post(
            "/api/v1/redemptions/",
            {**who(client), "points": 5, "reserve": True},
            format="json",
        ).json()["id"]

    return {
        "clients": {"own": own, "other": other, "partner": partner, "partner_b": partner_b},
        "purchase": {"own": buy(own, "A-1"), "partner": buy(partner, "P-1")},
        "redemption": {"own": reserve(own), "partner": reserve(partner)},
    }


# (who asks, whose object): every pair where the asker must not reach the object.
FOREIGN = [
    ("other", "own"),
    ("partner", "own"),
    ("partner_b", "partner"),
    ("other", "partner"),
]


@pytest.mark.parametrize(("asker", "owner"), FOREIGN)
def test_no_access_to_foreign_purchases(world, asker, owner):
    client = world["clients"][asker]
    purchase_id = world["purchase"][owner]
    response = client.post(
        f"/api/v1/purchases/{purchase_id}/returns/", {"external_id": "X"}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "purchase_not_found"
    assert not Purchase.objects.get(pk=purchase_id).returns.exists()


@pytest.mark.parametrize(("asker", "owner"), FOREIGN)
@pytest.mark.parametrize("verb", ["confirm", "cancel"])
def test_no_access_to_foreign_redemptions(world, asker, owner, verb):
    client = world["clients"][asker]
    redemption_id = world["redemption"][owner]
    response = client.post(f"/api/v1/redemptions/{redemption_id}/{verb}/")
    assert response.status_code == 404
    assert response.json()["code"] == "redemption_not_found"
    assert Redemption.objects.get(pk=redemption_id).status == "reserved"


@pytest.mark.parametrize("owner", ["own", "partner"])
def test_owners_do_reach_their_objects(world, owner):
    client = world["clients"][owner]
    purchase_id = world["purchase"][owner]
    response = client.post(f"/api/v1/purchases/{purchase_id}/returns/", {}, format="json")
    assert response.status_code == 201
    assert response.json()["purchase"] == purchase_id
    assert Purchase.objects.get(pk=purchase_id).returns.count() == 1
    redemption_id = world["redemption"][owner]
    response = client.post(f"/api/v1/redemptions/{redemption_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert Redemption.objects.get(pk=redemption_id).status == "cancelled"


def test_unrestricted_pos_key_may_return_any_purchase(world, api):
    # A key with no store list and not a partner serves every store (e.g. the webshop's
    # returns desk), so it may take back a store's purchase.
    purchase_id = world["purchase"]["own"]
    response = api.post(f"/api/v1/purchases/{purchase_id}/returns/", {}, format="json")
    assert response.status_code == 201
    assert Purchase.objects.get(pk=purchase_id).returns.count() == 1


@pytest.mark.parametrize("method", ["get", "post", "delete"])
@pytest.mark.parametrize("path", ["/api/", "/api/v1/", "/api/v1/nothing/", "/api/v2/members/"])
def test_every_other_api_path_is_a_json_404_without_a_key(method, path):
    response = getattr(client_for(None), method)(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "not_found"
