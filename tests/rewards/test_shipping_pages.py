"""Customer service's shipping list (/shipping/) and redemption pages (/redemptions/): who may
read and act (every role), the actions audited with their reason, bad input as a form error,
keyset paging, the link to the export, and a bound on the queries with many rows."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import AuditEntry
from rewards import services
from rewards.models import Redemption
from tests.rewards.factories import (
    ProductRewardFactory,
    RewardFactory,
    VoucherCodeFactory,
    VoucherRewardFactory,
)
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]
# Who may read each page (a role without the permission gets 403)...
SHIPPING_READERS = {"Customer service", "Administrator"}
REDEMPTION_READERS = set(ROLES)
# ...and who may act on it.
ACTORS = {"Customer service", "Administrator"}


@pytest.fixture
def parcel(member_with):
    reward = ProductRewardFactory(name_en="Tote bag", points=100, stock=50)
    member = member_with(500, first_name="Anna", last_name="de Vries")
    return services.redemption_redeem(
        member=member, reward=reward, shipping_address="Damrak 1\n1012 LG Amsterdam"
    )


@pytest.fixture
def reservation(member_with):
    member = member_with(500, first_name="Bob", last_name="Jansen")
    return services.redemption_reserve(member=member, reward=RewardFactory(points=200))


@pytest.fixture
def agent(client, staff_user):
    user = staff_user("Customer service", first_name="Cas", last_name="Service")
    client.force_login(user)
    return user


def _ship(client, redemption, **data):
    return client.post(reverse("shipping-set", args=[redemption.pk]), data)


# --- who may ---


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reads_only_the_pages_its_permissions_allow(
    client, staff_user, role, parcel, reservation
):
    client.force_login(staff_user(role))
    expected = 200 if role in SHIPPING_READERS else 403
    assert client.get(reverse("shipping")).status_code == expected
    expected = 200 if role in REDEMPTION_READERS else 403
    assert client.get(reverse("redemptions")).status_code == expected
    assert client.get(reverse("redemption", args=[parcel.pk])).status_code == expected


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_ship_or_not(client, staff_user, role, parcel):
    user = staff_user(role)
    client.force_login(user)
    response = _ship(client, parcel, status="shipped", reason="sent")
    parcel.refresh_from_db()
    if role in ACTORS:
        assert response.status_code == 302
        assert parcel.fulfilment_status == "shipped"
        assert AuditEntry.objects.get(action="fulfilment_set").actor == user
    else:
        assert response.status_code == 403
        assert parcel.fulfilment_status == "to_ship"
        assert not AuditEntry.objects.filter(action="fulfilment_set").exists()


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_cancel_a_reservation_or_not(client, staff_user, role, reservation):
    client.force_login(staff_user(role))
    response = client.post(
        reverse("redemption-page-cancel", args=[reservation.pk]), {"reason": "member called"}
    )
    reservation.refresh_from_db()
    if role in ACTORS:
        assert response.status_code == 302
        assert reservation.status == Redemption.Status.CANCELLED
    else:
        assert response.status_code == 403
        assert reservation.status == Redemption.Status.RESERVED


@pytest.mark.parametrize("role", ROLES)
def test_the_sidebar_links_the_new_pages_for_the_roles_that_may_open_them(client, staff_user, role):
    client.force_login(staff_user(role))
    html = client.get(reverse("home")).content.decode()
    assert (f'href="{reverse("shipping")}"' in html) == (role in SHIPPING_READERS)
    assert (f'href="{reverse("redemptions")}"' in html) == (role in REDEMPTION_READERS)
    assert "/admin/rewards/fulfilment/" not in html


@pytest.mark.parametrize("role", ROLES)
def test_the_actions_show_only_to_the_roles_that_may_use_them(
    client, staff_user, role, reservation
):
    client.force_login(staff_user(role))
    html = client.get(reverse("redemption", args=[reservation.pk])).content.decode()
    assert ('id="cancel-form"' in html) == (role in ACTORS)


def test_finance_sees_member_numbers_no_names_and_no_voucher_codes(client, staff_user, member_with):
    reward = VoucherRewardFactory(name_en="Coffee", points=50)
    VoucherCodeFactory(reward=reward, code="COFF-1234-ABCD")
    member = member_with(100, first_name="Anna", last_name="de Vries")
    redemption = services.redemption_redeem(member=member, reward=reward)
    client.force_login(staff_user("Finance"))
    for url in (reverse("redemptions"), reverse("redemption", args=[redemption.pk])):
        html = client.get(url).content.decode()
        assert f"member {member.pk}" in html
        assert "de Vries" not in html and "COFF-1234-ABCD" not in html
    # ...and may not look members up by name, nor redemptions by code.
    page = client.get(reverse("redemptions"), {"member": "de Vries", "code": "COFF-1234-ABCD"})
    assert page.context["rows"] == []
    page = client.get(reverse("redemptions"), {"member": str(member.pk)})
    assert [r.pk for r in page.context["rows"]] == [redemption.pk]


# --- the shipping list ---


def test_an_agent_marks_a_parcel_shipped_with_a_tracking_code_and_a_reason(client, agent, parcel):
    html = client.get(reverse("shipping")).content.decode()
    assert "Tote bag" in html and "Damrak 1<br>1012 LG Amsterdam" in html
    assert f'href="{reverse("member-page", args=[parcel.member_id])}"' in html
    assert f'href="{reverse("redemption", args=[parcel.pk])}"' in html
    assert f'action="{reverse("shipping-set", args=[parcel.pk])}"' in html

    here = reverse("shipping") + "?status=to_ship"
    response = _ship(
        client, parcel, status="shipped", tracking_code=" 3SABC123 ", reason="PostNL", next=here
    )
    assert response.status_code == 302 and response.url == here
    parcel.refresh_from_db()
    assert parcel.fulfilment_status == "shipped" and parcel.tracking_code == "3SABC123"
    entry = AuditEntry.objects.get(action="fulfilment_set")
    assert (entry.actor, entry.member_id, entry.reason) == (agent, parcel.member_id, "PostNL")
    assert entry.details == {
        "redemption_id": parcel.pk,
        "from": "to_ship",
        "to": "shipped",
        "tracking_code": "3SABC123",
    }
    assert "Damrak" not in str(entry.details)

    assert client.get(reverse("shipping"), {"status": "to_ship"}).context["rows"] == []
    [row] = client.get(reverse("shipping"), {"status": "shipped"}).context["rows"]
    assert row.pk == parcel.pk
    # The redemption's own page tells the story.
    html = client.get(reverse("redemption", args=[parcel.pk])).content.decode()
    assert "Shipping status changed" in html and "PostNL" in html and "3SABC123" in html


@pytest.mark.parametrize(
    "data, error",
    [
        ({"status": "shipped", "reason": ""}, "Say why you change the shipping status."),
        ({"status": "shipped", "reason": "   "}, "Say why you change the shipping status."),
        ({"status": "lost", "reason": "gone"}, "Select a valid choice."),
        ({"status": "delivered", "reason": "skip"}, "Cannot go from"),
        ({"status": "shipped", "reason": "x", "tracking_code": "9" * 65}, "at most 64"),
    ],
)
def test_bad_input_is_a_form_error_and_changes_nothing(client, agent, parcel, data, error):
    response = _ship(client, parcel, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    parcel.refresh_from_db()
    assert parcel.fulfilment_status == "to_ship" and parcel.tracking_code == ""
    assert not AuditEntry.objects.filter(action="fulfilment_set").exists()


def test_a_bad_form_on_the_redemption_page_shows_that_page_again(client, agent, parcel):
    here = reverse("redemption", args=[parcel.pk])
    response = _ship(client, parcel, status="returned", reason="", next=here)
    assert response.status_code == 400
    assert response.templates[0].name == "rewards/redemption_detail.html"


def test_a_redemption_without_a_parcel_cannot_be_shipped(client, agent, reservation):
    assert _ship(client, reservation, status="shipped", reason="x").status_code == 404


def test_the_list_filters_by_status_and_date_and_pages_by_keyset(client, agent, member_with):
    reward = ProductRewardFactory(points=10, stock=None)
    member = member_with(10_000)
    now = timezone.now()
    made = []
    for days in range(7):
        redemption = services.redemption_redeem(member=member, reward=reward)
        Redemption.objects.filter(pk=redemption.pk).update(
            created_at=now - timedelta(days=days, hours=1)
        )
        made.append(redemption.pk)
    services.fulfilment_set(redemption=Redemption.objects.get(pk=made[0]), status="shipped")
    shipping = reverse("shipping")

    # To ship: oldest first, the one waiting longest on top.
    rows = client.get(shipping, {"status": "to_ship"}).context["rows"]
    assert [r.pk for r in rows] == list(reversed(made[1:]))
    day = timezone.localdate(now - timedelta(days=2, hours=1))
    rows = client.get(shipping, {"start": day, "end": day}).context["rows"]
    assert [r.pk for r in rows] == [made[2]]

    from rewards import views

    views.SHIPMENTS_PER_PAGE = 4
    try:
        first = client.get(shipping, {"status": "to_ship"})
        assert [r.pk for r in first.context["rows"]] == [made[6], made[5], made[4], made[3]]
        cursor = first.context["next_cursor"]
        second = client.get(shipping, {"status": "to_ship", "after": cursor})
        assert [r.pk for r in second.context["rows"]] == [made[2], made[1]]
        assert second.context["next_cursor"] is None
    finally:
        views.SHIPMENTS_PER_PAGE = 50


@pytest.mark.parametrize(
    "params", [{"after": "nonsense"}, {"after": "9" * 40 + ".1"}, {"start": "2026-13-01"}]
)
def test_a_broken_filter_or_page_link_is_a_400_not_a_500(client, agent, params):
    assert client.get(reverse("shipping"), params).status_code == 400
    assert client.get(reverse("redemptions"), params).status_code == 400


def test_the_export_link_carries_the_filters_to_the_exports_page(client, agent):
    page = client.get(reverse("shipping"), {"status": "shipped", "start": "2026-11-01"})
    url = page.context["export_url"]
    assert url.startswith(reverse("exports"))
    form = client.get(url).context["form"]
    assert form["export"].value() == "shipping"
    assert form["status"].value() == "shipped"
    assert form["date_from"].value() == "2026-11-01"


# --- redemptions: search, detail, cancel, resend ---


def test_an_agent_finds_redemptions_by_member_reward_status_and_voucher_code(
    client, agent, member_with, parcel, reservation
):
    reward = VoucherRewardFactory(name_en="Coffee", points=50)
    VoucherCodeFactory(reward=reward, code="COFF-1234-ABCD")
    coffee = services.redemption_redeem(member=parcel.member, reward=reward)
    search = reverse("redemptions")

    def found(**params):
        return [r.pk for r in client.get(search, params).context["rows"]]

    assert found() == [coffee.pk, reservation.pk, parcel.pk]
    assert found(member="de Vries") == [coffee.pk, parcel.pk]
    assert found(member=parcel.member.email) == [coffee.pk, parcel.pk]
    assert found(member="nobody at all") == []
    assert found(code="COFF-1234-ABCD") == [coffee.pk]
    assert found(code=" COFF-1234-ABCD ") == [coffee.pk]
    assert found(reward=parcel.reward_id) == [parcel.pk]
    assert found(status="reserved") == [reservation.pk]
    assert found(status="reserved", member="de Vries") == []
    html = client.get(search, {"code": "COFF-1234-ABCD"}).content.decode()
    assert "COFF-1234-ABCD" in html and f'href="{reverse("redemption", args=[coffee.pk])}"' in html


def test_an_agent_cancels_a_reservation_with_a_reason(client, agent, reservation):
    url = reverse("redemption-page-cancel", args=[reservation.pk])
    refused = client.post(url, {"reason": ""})
    assert refused.status_code == 400
    assert "Say why you cancel this reservation." in refused.content.decode()
    reservation.refresh_from_db()
    assert reservation.status == Redemption.Status.RESERVED

    response = client.post(url, {"reason": "member changed their mind"}, follow=True)
    assert response.redirect_chain[-1][0] == reverse("redemption", args=[reservation.pk])
    reservation.refresh_from_db()
    assert reservation.status == Redemption.Status.CANCELLED
    assert reservation.hold.status == "voided"
    entry = AuditEntry.objects.get(action="redemption_cancel")
    assert (entry.actor, entry.member_id) == (agent, reservation.member_id)
    assert entry.reason == "member changed their mind"
    html = response.content.decode()
    assert "Reservation cancelled" in html and 'id="cancel-form"' not in html


def test_cancelling_a_confirmed_redemption_is_refused_with_a_message(client, agent, parcel):
    response = client.post(
        reverse("redemption-page-cancel", args=[parcel.pk]), {"reason": "please"}, follow=True
    )
    assert response.status_code == 200
    assert "A confirmed redemption cannot be cancelled." in response.content.decode()
    parcel.refresh_from_db()
    assert parcel.status == Redemption.Status.CONFIRMED
    assert not AuditEntry.objects.filter(action="redemption_cancel").exists()


def test_an_unknown_redemption_is_a_404(client, agent):
    assert client.get(reverse("redemption", args=[999_999])).status_code == 404
    assert (
        client.post(reverse("redemption-page-cancel", args=[999_999]), {"reason": "x"}).status_code
        == 404
    )


def test_an_agent_sends_a_voucher_again_from_the_redemption_page(
    client, agent, member_with, mailoutbox
):
    reward = VoucherRewardFactory(name_en="Coffee", points=50)
    VoucherCodeFactory(reward=reward, code="COFF-1234-ABCD")
    redemption = services.redemption_redeem(member=member_with(100), reward=reward)
    here = reverse("redemption", args=[redemption.pk])
    assert 'id="resend-form"' in client.get(here).content.decode()
    response = client.post(
        reverse("member-page-voucher-resend", args=[redemption.member_id, redemption.pk]),
        {"voucher-channel": "email", "voucher-reason": "lost the mail", "next": here},
        follow=True,
    )
    assert response.redirect_chain[-1][0] == here
    [mail] = mailoutbox
    assert "COFF-1234-ABCD" in mail.body
    assert AuditEntry.objects.get(action="voucher_resend").reason == "lost the mail"
    assert "Voucher sent again" in response.content.decode()


def test_the_resend_does_not_send_back_to_another_site(client, agent, member_with, mailoutbox):
    reward = VoucherRewardFactory(points=50)
    VoucherCodeFactory(reward=reward)
    redemption = services.redemption_redeem(member=member_with(100), reward=reward)
    response = client.post(
        reverse("member-page-voucher-resend", args=[redemption.member_id, redemption.pk]),
        {"voucher-channel": "email", "voucher-reason": "x", "next": "https://evil.example/"},
    )
    assert response.url == reverse("member-page-redemptions", args=[redemption.member_id])


# --- query bounds ---


def test_both_lists_answer_in_a_bounded_number_of_queries_with_many_rows(
    client, agent, member_with, django_assert_max_num_queries
):
    product = ProductRewardFactory(points=10, stock=None)
    voucher = VoucherRewardFactory(points=10)
    for i in range(60):
        VoucherCodeFactory(reward=voucher, code=f"BULK-{i:04d}-CODE")
    for i in range(60):
        member = member_with(100)
        services.redemption_redeem(member=member, reward=product, shipping_address=f"Street {i}")
        services.redemption_redeem(member=member, reward=voucher)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("shipping"))
    assert len(page.context["rows"]) == 50 and page.context["next_cursor"]
    with django_assert_max_num_queries(12):
        page = client.get(reverse("redemptions"))
    assert len(page.context["rows"]) == 50 and page.context["next_cursor"]
    with django_assert_max_num_queries(12):
        page = client.get(reverse("redemptions"), {"member": "Street"})
    with django_assert_max_num_queries(12):
        client.get(reverse("redemption", args=[Redemption.objects.first().pk]))


def test_the_pages_carry_no_inline_code(client, agent, parcel, reservation):
    for url in (
        reverse("shipping"),
        reverse("redemptions"),
        reverse("redemption", args=[parcel.pk]),
        reverse("redemption", args=[reservation.pk]),
    ):
        assert_no_unmarked_inline_code(client.get(url).content.decode(), None)
