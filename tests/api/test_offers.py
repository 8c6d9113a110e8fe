"""`GET members/{id}/offers/` and redeeming an offer through `POST redemptions/`."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from campaigns.models import CampaignOffer
from loyalty_site.channels import partner_link
from members.models import Member
from rewards.errors import RewardNotOffered
from rewards.models import Redemption
from rewards.services import redemption_redeem
from tests.api.conftest import client_for
from tests.api.factories import member_with
from tests.campaigns.offering import active_campaign, buy, salt_splitting
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def offer_setup(db):
    """Two members (one treated, one in the control group) of a running offer campaign whose
    coffee offer is an offer-only reward."""
    treated, held_out = member_with(points=500), member_with(points=500)
    now = timezone.now()
    buy(treated, "c1", at=now - timedelta(days=2), lines=[{"category": "coffee", "amount": 20}])
    campaign = active_campaign(
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=10),
        control_basis_points=5000,
        salt=salt_splitting([treated], [held_out]),
    )
    coffee = RewardFactory(
        name_en="Free coffee", name_nl="Gratis koffie", points=120, offer_only=True
    )
    CampaignOffer.objects.create(
        campaign=campaign, reward=coffee, rule="top_category", category="coffee"
    )
    return campaign, coffee, treated, held_out


def offers_of(client, member, **headers):
    return client.get(f"/api/v1/members/{member.public_id}/offers/", **headers)


def test_offers_shape_and_language(api, offer_setup):
    campaign, coffee, treated, _held_out = offer_setup
    response = offers_of(api, treated)
    assert response.status_code == 200
    [body] = response.json()
    assert datetime.fromisoformat(body.pop("valid_until")) == campaign.ends_at
    assert [body] == [
        {
            "reward": coffee.pk,
            "kind": "donation",
            "name": "Free coffee",
            "description": "",
            "points": 120,
            "campaign": campaign.pk,
            "rule": "top_category",
            "why": "You buy most in coffee.",
            "redeem": {
                "method": "POST",
                "path": "/api/v1/redemptions/",
                "reward": coffee.pk,
                "identify_by": "member",
            },
        }
    ]
    dutch = offers_of(api, treated, HTTP_ACCEPT_LANGUAGE="nl").json()
    assert dutch[0]["name"] == "Gratis koffie"


def test_control_member_sees_no_offers_and_offer_only_rewards_stay_out_of_the_catalogue(
    api, offer_setup
):
    _campaign, coffee, treated, held_out = offer_setup
    assert offers_of(api, held_out).json() == []
    for member in (treated, held_out):
        rewards = api.get(f"/api/v1/members/{member.public_id}/rewards/").json()
        assert coffee.pk not in [r["id"] for r in rewards]


def test_unknown_erased_and_unscoped(api, make_channel, offer_setup):
    _campaign, _coffee, treated, _held_out = offer_setup
    response = api.get("/api/v1/members/00000000-0000-0000-0000-000000000000/offers/")
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"
    _channel, key = make_channel("writer", scopes=["purchases:write"])
    assert offers_of(client_for(key), treated).status_code == 403
    Member.objects.filter(pk=treated.pk).update(status=Member.Status.ERASED)
    assert offers_of(api, treated).status_code == 404


def test_a_partner_sees_offers_only_of_members_linked_to_it(make_channel, offer_setup):
    _campaign, coffee, treated, _held_out = offer_setup
    channel, key = make_channel("partner-a", kind="partner")
    partner = client_for(key)
    response = offers_of(partner, treated)
    assert response.status_code == 404
    assert response.json()["code"] == "member_not_found"
    partner_link(channel=channel, member=treated)
    [offer] = offers_of(partner, treated).json()
    assert offer["reward"] == coffee.pk
    assert offer["redeem"]["identify_by"] == "card_number"


def test_the_offered_member_redeems_the_offer_and_the_control_member_is_refused(api, offer_setup):
    _campaign, coffee, treated, held_out = offer_setup
    refused = api.post(
        "/api/v1/redemptions/", {"member": str(held_out.public_id), "reward": coffee.pk},
        format="json",
    )  # fmt: skip
    assert refused.status_code == 409
    assert refused.json()["code"] == "reward_not_offered"
    assert not Redemption.objects.filter(member=held_out).exists()

    redeemed = api.post(
        "/api/v1/redemptions/", {"member": str(treated.public_id), "reward": coffee.pk},
        format="json",
    )  # fmt: skip
    assert redeemed.status_code == 201, redeemed.json()
    assert redeemed.json()["balance"] == 380
    # The redemption's member and reward are what the campaign's results count.
    assert Redemption.objects.filter(member=treated, reward=coffee, status="confirmed").exists()


def test_the_redemption_service_refuses_an_offer_only_reward_without_the_callers_word(
    offer_setup,
):
    _campaign, coffee, treated, _held_out = offer_setup
    with pytest.raises(RewardNotOffered):
        redemption_redeem(member=treated, reward=coffee)
    assert redemption_redeem(member=treated, reward=coffee, offered=True).points == 120


def test_offers_query_count(api, offer_setup, django_assert_max_num_queries):
    _campaign, _coffee, treated, _held_out = offer_setup
    for _ in range(3):
        campaign = active_campaign(starts_at=timezone.now() - timedelta(hours=1))
        CampaignOffer.objects.create(campaign=campaign, reward=RewardFactory(), rule="fallback")
    with django_assert_max_num_queries(8):
        assert len(offers_of(api, treated).json()) == 4
