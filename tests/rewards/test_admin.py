import csv
import io

import pytest
import tablib
from django.contrib.messages import get_messages
from django.urls import reverse

from members.models import AuditEntry
from rewards import services
from rewards.admin import VoucherCodeResource
from rewards.models import Redemption, Reward
from tests.rewards.factories import (
    ProductRewardFactory,
    RewardFactory,
    TierFactory,
    VoucherCodeFactory,
    VoucherRewardFactory,
)

pytestmark = pytest.mark.django_db


def test_marketing_manages_the_catalogue_with_tier_prices(client, staff_user):
    gold = TierFactory(name="Gold")
    client.force_login(staff_user("Marketing"))
    response = client.post(
        reverse("admin:rewards_reward_add"),
        {
            "kind": "product",
            "active": "on",
            "sort_order": "3",
            "name_en": "Tote bag",
            "name_nl": "Draagtas",
            "points": "750",
            "stock": "40",
            "channels": ["pos", "app"],
            "visible_tiers": [gold.pk],
            "tier_prices-TOTAL_FORMS": "1",
            "tier_prices-INITIAL_FORMS": "0",
            "tier_prices-0-tier": str(gold.pk),
            "tier_prices-0-points": "500",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    reward = Reward.objects.get(name_en="Tote bag")
    assert reward.channels == ["pos", "app"]
    assert list(reward.visible_tiers.all()) == [gold]
    assert reward.tier_prices.get().points == 500
    page = client.get(reverse("admin:rewards_reward_changelist"))
    assert list(page.context["cl"].result_list) == [reward]


def test_customer_service_sees_rewards_but_cannot_change_them(client, staff_user):
    reward = RewardFactory()
    client.force_login(staff_user("Customer service"))
    page = client.get(reverse("admin:rewards_reward_changelist"))
    assert list(page.context["cl"].result_list) == [reward]
    assert client.get(reverse("admin:rewards_reward_add")).status_code == 403
    assert (
        client.post(reverse("admin:rewards_reward_change", args=[reward.pk]), {}).status_code == 403
    )
    assert Reward.objects.get().name_en == reward.name_en  # the refused post changed nothing


def test_finance_sees_redemptions_only(client, staff_user, member_with):
    redemption = services.redemption_redeem(
        member=member_with(100), reward=RewardFactory(points=10)
    )
    client.force_login(staff_user("Finance"))
    page = client.get(reverse("admin:rewards_redemption_changelist"))
    assert list(page.context["cl"].result_list) == [redemption]
    assert client.get(reverse("admin:rewards_reward_changelist")).status_code == 403
    assert client.get(reverse("admin:rewards_fulfilment_changelist")).status_code == 403


def test_generate_codes_action(client, staff_user):
    reward = VoucherRewardFactory()
    client.force_login(staff_user("Marketing"))
    response = client.post(
        reverse("admin:rewards_reward_changelist"),
        {"action": "generate_codes", "_selected_action": [reward.pk], "count": "25"},
    )
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [f"25 codes added to {reward}."]
    assert reward.codes.filter(status="unused").count() == 25
    changelist = client.get(reverse("admin:rewards_reward_changelist"))
    assert [r.codes_unused for r in changelist.context["cl"].result_list] == [25]
    code = reward.codes.first()
    page = client.get(reverse("admin:rewards_vouchercode_change", args=[code.pk]))
    assert page.status_code == 200
    assert code.code in page.content.decode()


def test_voucher_import_creates_codes_and_never_moves_existing_ones():
    reward, other = VoucherRewardFactory(), VoucherRewardFactory()
    issued = VoucherCodeFactory(reward=reward, code="KEEP-ME")
    dataset = tablib.Dataset(headers=["code", "reward", "expires_at"])
    dataset.append([" new-code-1 ", other.pk, "2027-12-31 23:59"])
    dataset.append(["NEW-CODE-2", other.pk, ""])
    dataset.append(["keep-me", other.pk, ""])

    result = VoucherCodeResource().import_data(dataset, dry_run=False)

    assert not result.has_errors() and not result.has_validation_errors()
    assert set(other.codes.values_list("code", flat=True)) == {"NEW-CODE-1", "NEW-CODE-2"}
    assert other.codes.get(code="NEW-CODE-1").expires_at.year == 2027
    issued.refresh_from_db()
    assert issued.reward == reward


def test_voucher_import_page_is_for_marketing(client, staff_user):
    url = reverse("admin:rewards_vouchercode_import")
    client.force_login(staff_user("Marketing"))
    assert client.get(url).status_code == 200
    client.force_login(staff_user("Customer service"))
    assert client.get(url).status_code == 403


def test_customer_service_cancels_a_reservation(client, staff_user, member_with):
    member = member_with(500)
    reservation = services.redemption_reserve(member=member, reward=RewardFactory(points=200))
    confirmed = services.redemption_redeem(member=member, reward=RewardFactory(points=100))
    client.force_login(staff_user("Customer service"))
    response = client.post(
        reverse("admin:rewards_redemption_changelist"),
        {
            "action": "cancel_reservations",
            "_selected_action": [reservation.pk, confirmed.pk],
            "reason": "member called",
        },
        follow=True,
    )
    assert "cannot be cancelled" in response.content.decode()
    reservation.refresh_from_db()
    confirmed.refresh_from_db()
    assert reservation.status == Redemption.Status.CANCELLED
    assert confirmed.status == Redemption.Status.CONFIRMED


def _rows(response) -> list[list[str]]:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))


def test_fulfilment_actions_and_shipping_export(client, staff_user, member_with):
    reward = ProductRewardFactory(name_en="Tote bag", points=100, stock=10)
    first = services.redemption_redeem(
        member=member_with(500, first_name="Anna", last_name="de Vries"),
        reward=reward,
        shipping_address="=HYPERLINK(evil)",
    )
    second = services.redemption_redeem(
        member=member_with(500), reward=reward, shipping_address="Damrak 1, Amsterdam"
    )
    services.redemption_redeem(member=member_with(500), reward=RewardFactory(points=10))
    client.force_login(staff_user("Customer service"))
    changelist = reverse("admin:rewards_fulfilment_changelist")
    page = client.get(changelist)
    assert page.status_code == 200
    assert page.context["cl"].result_count == 2

    rows = _rows(client.get(reverse("admin:rewards_fulfilment_export")))
    assert len(rows) == 3
    assert rows[1][0] == str(first.pk)
    assert rows[1][3] == "Anna de Vries"
    assert rows[1][7] == "'=HYPERLINK(evil)"
    assert rows[2][7] == "Damrak 1, Amsterdam"

    refused = client.post(
        changelist, {"action": "mark_shipped", "_selected_action": [first.pk]}, follow=True
    )
    assert "Give a reason" in refused.content.decode()
    first.refresh_from_db()
    assert first.fulfilment_status == "to_ship"
    client.post(
        changelist,
        {"action": "mark_shipped", "_selected_action": [first.pk], "reason": "sent by PostNL"},
    )
    first.refresh_from_db()
    assert first.fulfilment_status == "shipped"
    audit = AuditEntry.objects.get(action="fulfilment_set")
    assert audit.reason == "sent by PostNL" and audit.member_id == first.member_id
    rows = _rows(client.get(reverse("admin:rewards_fulfilment_export")))
    assert [row[0] for row in rows[1:]] == [str(second.pk)]

    selected = client.post(
        changelist,
        {"action": "export_to_ship", "_selected_action": [first.pk, second.pk]},
    )
    assert [row[0] for row in _rows(selected)[1:]] == [str(first.pk), str(second.pk)]


def test_finance_cannot_export_the_shipping_list(client, staff_user):
    client.force_login(staff_user("Finance"))
    assert client.get(reverse("admin:rewards_fulfilment_export")).status_code == 403


def test_redemption_pages_and_csv(client, staff_user, member_with):
    redemption = services.points_pay(member=member_with(500), points=250).redemption
    client.force_login(staff_user("Finance"))
    page = client.get(reverse("admin:rewards_redemption_change", args=[redemption.pk]))
    assert page.status_code == 200 and page.context["original"] == redemption
    rows = _rows(
        client.post(
            reverse("admin:rewards_redemption_changelist"),
            {"action": "export_csv", "_selected_action": [redemption.pk]},
        )
    )
    assert rows[1][4] == "250"
    assert rows[1][8] == "2.50"


def test_voucher_code_list_finds_a_code_whatever_its_case(client, staff_user):
    wanted = VoucherCodeFactory(code="ABCD-EFGH-JKMN")
    VoucherCodeFactory.create_batch(2)
    client.force_login(staff_user("Customer service"))
    url = reverse("admin:rewards_vouchercode_changelist")
    assert len(client.get(url).context["cl"].result_list) == 3
    page = client.get(url, {"q": "abcd-efgh-jkmn"})
    assert list(page.context["cl"].result_list) == [wanted]


@pytest.mark.parametrize(
    ("query", "found"),
    [("anna@example.nl", True), ("ABCD-EFGH", False), ("12", False), ("not a uuid", False)],
)
def test_redemption_search_accepts_any_text(client, staff_user, member_with, query, found):
    redemption = services.redemption_redeem(
        member=member_with(100, email="anna@example.nl"), reward=RewardFactory(points=10)
    )
    client.force_login(staff_user("Customer service"))
    page = client.get(reverse("admin:rewards_redemption_changelist"), {"q": query})
    assert list(page.context["cl"].result_list) == ([redemption] if found else [])
    # Not a parcel: the shipping list finds nothing, and does not fail on odd text either.
    page = client.get(reverse("admin:rewards_fulfilment_changelist"), {"q": query})
    assert list(page.context["cl"].result_list) == []
