import pytest

from ledger.models import Account
from rewards.models import Redemption
from tests.api.conftest import client_for
from tests.api.factories import member_with
from tests.rewards.factories import RewardFactory, VoucherCodeFactory, VoucherRewardFactory

pytestmark = pytest.mark.django_db


def test_redeem_points_debits_at_once(api, member):
    response = api.post(
        "/api/v1/redemptions/", {"member": str(member.public_id), "points": 200}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "confirmed" and body["points"] == 200
    assert body["balance"] == 300 and body["available"] == 300
    assert body["code"] is None
    assert Account.objects.get(member=member).balance == 300


def test_redeem_more_than_the_balance_is_409_insufficient_points(api, member):
    response = api.post(
        "/api/v1/redemptions/", {"member": str(member.public_id), "points": 501}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_points"
    assert Account.objects.get(member=member).balance == 500
    assert not Redemption.objects.exists()


def test_redeem_a_voucher_reward_gives_its_code(api, member):
    reward = VoucherRewardFactory(points=150)
    VoucherCodeFactory(reward=reward, code="GIFT-0001")
    response = api.post(
        "/api/v1/redemptions/",
        {"member": str(member.public_id), "reward": reward.pk},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["code"] == "GIFT-0001"
    assert response.json()["points"] == 150 and response.json()["balance"] == 350


def test_unknown_reward_is_404(api, member):
    response = api.post(
        "/api/v1/redemptions/", {"member": str(member.public_id), "reward": 999999}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["code"] == "reward_not_found"
    assert not Redemption.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"points": 10},
        {"member": "x", "points": 10},
        {"member": None, "points": 0},
        {"member": None},
        {"member": None, "points": 10, "reward": 1},
        {"member": None, "points": 10, "status": "confirmed"},
    ],
)
def test_redemption_validation(api, member, body):
    body = {
        k: (str(member.public_id) if k == "member" and v is None else v) for k, v in body.items()
    }
    response = api.post("/api/v1/redemptions/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert not Redemption.objects.exists()


def test_reserve_then_confirm(api, member):
    reward = RewardFactory(points=100)
    response = api.post(
        "/api/v1/redemptions/",
        {"member": str(member.public_id), "reward": reward.pk, "reserve": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "reserved"
    assert body["balance"] == 500 and body["available"] == 400
    response = api.post(f"/api/v1/redemptions/{body['id']}/confirm/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "confirmed"
    assert response.json()["balance"] == 400
    # Confirming twice is harmless; cancelling a confirmed one is refused.
    again = api.post(f"/api/v1/redemptions/{body['id']}/confirm/")
    assert (again.status_code, again.json()) == (200, response.json())
    response = api.post(f"/api/v1/redemptions/{body['id']}/cancel/")
    assert response.status_code == 409
    assert response.json()["code"] == "redemption_confirmed"
    assert Redemption.objects.get(pk=body["id"]).status == "confirmed"
    assert Account.objects.get(member=member).balance == 400


def test_reserve_then_cancel_gives_the_points_back(api, member):
    response = api.post(
        "/api/v1/redemptions/",
        {"member": str(member.public_id), "points": 100, "reserve": True},
        format="json",
    )
    redemption_id = response.json()["id"]
    response = api.post(f"/api/v1/redemptions/{redemption_id}/cancel/")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled" and response.json()["available"] == 500
    assert Redemption.objects.get(pk=redemption_id).status == "cancelled"
    account = Account.objects.get(member=member)
    assert (account.balance, account.held) == (500, 0)


@pytest.mark.parametrize("verb", ["confirm", "cancel"])
def test_confirm_or_cancel_an_unknown_redemption_is_404(api, verb):
    for redemption_id in ("999999", "abc"):
        response = api.post(f"/api/v1/redemptions/{redemption_id}/{verb}/")
        assert response.status_code == 404
        assert response.json()["code"] == "redemption_not_found"


def test_partner_acts_only_on_its_own_redemptions(api, make_channel, member):
    reserved = api.post(
        "/api/v1/redemptions/",
        {"member": str(member.public_id), "points": 10, "reserve": True},
        format="json",
    ).json()
    _partner, key = make_channel("partner", kind="partner")
    partner = client_for(key)
    for verb in ("confirm", "cancel"):
        response = partner.post(f"/api/v1/redemptions/{reserved['id']}/{verb}/")
        assert response.status_code == 404
        assert response.json()["code"] == "redemption_not_found"
    assert Redemption.objects.get(pk=reserved["id"]).status == "reserved"
    card_number = member.cards.get().number
    partner.post(  # the member presents their card at the partner: linked
        "/api/v1/purchases/",
        {"card_number": card_number, "external_id": "P-1", "amount": "1.00"},
        format="json",
    )
    own = partner.post(
        "/api/v1/redemptions/",
        {"card_number": card_number, "points": 10, "reserve": True},
        format="json",
    ).json()
    response = partner.post(f"/api/v1/redemptions/{own['id']}/confirm/")
    assert response.status_code == 200
    assert Redemption.objects.get(pk=own["id"]).status == "confirmed"


def test_redemption_query_counts(api, django_assert_max_num_queries):
    member = member_with(points=500)
    with django_assert_max_num_queries(30):
        response = api.post(
            "/api/v1/redemptions/",
            {"member": str(member.public_id), "points": 10, "reserve": True},
            format="json",
        )
    with django_assert_max_num_queries(30):
        api.post(f"/api/v1/redemptions/{response.json()['id']}/confirm/")
