"""Marketing's catalogue pages (rewards/views.py): the list's figures, a reward's page, its forms,
its voucher pool (in the page and as a background job); who may do what; CSP; query bounds."""

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from members.models import AuditEntry, BackgroundJob
from rewards import selectors, services
from rewards.models import Redemption, Reward, RewardTierPrice, VoucherCode
from tests.rewards.factories import (
    ProductRewardFactory,
    RewardFactory,
    TierFactory,
    VoucherCodeFactory,
    VoucherRewardFactory,
)
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]


@pytest.fixture
def marketer(client, staff_user):
    user = staff_user("Marketing")
    client.force_login(user)
    return user


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _redeem(member_with, reward, *, days_ago=0, confirm=True):
    member = member_with(reward.points * 2)
    if confirm:
        redemption = services.redemption_redeem(member=member, reward=reward, channel="pos")
    else:
        redemption = services.redemption_reserve(member=member, reward=reward, channel="pos")
    if days_ago:
        Redemption.objects.filter(pk=redemption.pk).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )
    return redemption


def _row(html: str, reward: Reward) -> str:
    start = html.index(f'data-reward="{reward.pk}"')
    return html[start : html.index("</tr>", start)]


def _cells(row: str) -> list[list[str]]:
    return [
        re.sub(r"<[^>]+>", " ", cell).split()
        for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


# --- the list ---


def test_the_list_shows_stock_codes_and_redemptions_on_known_data(client, marketer, member_with):
    product = ProductRewardFactory(name_en="Tote bag", points=200, stock=20)
    voucher = VoucherRewardFactory(name_en="Coffee", points=50)
    for i in range(5):
        VoucherCodeFactory(reward=voucher, code=f"COFF-{i:04d}-AAAA")
    VoucherCodeFactory(
        reward=voucher, code="COFF-OLD0-AAAA", expires_at=timezone.now() - timedelta(days=1)
    )
    _redeem(member_with, product)  # today
    _redeem(member_with, product, days_ago=40)  # counts in the total only
    _redeem(member_with, product, confirm=False)  # reserved: neither
    _redeem(member_with, voucher)
    gold = TierFactory(name="Gold")
    RewardTierPrice.objects.create(reward=product, tier=gold, points=150)

    html = client.get(reverse("rewards")).content.decode()

    bag = _cells(_row(html, product))
    assert bag[0][:2] == ["Tote", "bag"]
    assert bag[2] == ["200", "Gold:", "150"]
    assert bag[3] == ["17"]  # 20 - two redeemed - one reserved
    assert bag[4] == ["1"]  # reserved
    assert bag[5] == ["–"]  # no codes
    assert bag[6] == ["1", "/", "2"]  # 30 days / total
    coffee = _cells(_row(html, voucher))
    assert coffee[3] == ["unlimited"]
    assert coffee[5] == ["4"]  # 6 codes: 1 issued, 1 past its date
    assert coffee[6] == ["1", "/", "1"]


def test_the_list_filters_by_active_kind_and_low_stock(client, marketer):
    low = ProductRewardFactory(name_en="Umbrella", stock=3)
    plenty = ProductRewardFactory(name_en="Mug", stock=500)
    off = RewardFactory(name_en="Charity", active=False)
    empty_pool = VoucherRewardFactory(name_en="Voucher without codes")

    def names(**query):
        html = client.get(reverse("rewards"), query).content.decode()
        return {
            r.name_en for r in (low, plenty, off, empty_pool) if f'data-reward="{r.pk}"' in html
        }

    assert names() == {"Umbrella", "Mug", "Charity", "Voucher without codes"}
    assert names(active="no") == {"Charity"}
    assert names(kind="product") == {"Umbrella", "Mug"}
    assert names(low_stock="on") == {"Umbrella", "Voucher without codes"}
    assert names(kind="nonsense") == {"Umbrella", "Mug", "Charity", "Voucher without codes"}


@pytest.mark.parametrize(
    "role,status",
    [("Marketing", 200), ("Customer service", 200), ("Finance", 403), ("Administrator", 200)],
)
def test_who_may_read_the_catalogue(client, staff_user, role, status):
    reward = RewardFactory()
    client.force_login(staff_user(role))
    assert client.get(reverse("rewards")).status_code == status
    assert client.get(reverse("reward", args=[reward.pk])).status_code == status


@pytest.mark.parametrize(
    "role,status",
    [("Marketing", 200), ("Customer service", 403), ("Finance", 403), ("Administrator", 200)],
)
def test_who_may_open_the_forms(client, staff_user, role, status):
    reward = RewardFactory()
    client.force_login(staff_user(role))
    assert client.get(reverse("reward-new")).status_code == status
    assert client.get(reverse("reward-edit", args=[reward.pk])).status_code == status


def test_customer_service_reads_without_edit_buttons_and_forged_posts_are_refused(
    client, staff_user
):
    reward = VoucherRewardFactory(name_en="Coffee", points=50)
    client.force_login(staff_user("Customer service"))
    html = client.get(reverse("reward", args=[reward.pk])).content.decode()
    assert reverse("reward-edit", args=[reward.pk]) not in html
    assert reverse("reward-codes-generate", args=[reward.pk]) not in html
    assert reverse("reward-new") not in client.get(reverse("rewards")).content.decode()
    forged = [
        (reverse("reward-new"), {"name_en": "X"}),
        (reverse("reward-edit", args=[reward.pk]), {"points": "1"}),
        (reverse("reward-codes-generate", args=[reward.pk]), {"count": "5"}),
    ]
    for url, data in forged:
        assert client.post(url, data).status_code == 403
    reward.refresh_from_db()
    assert reward.points == 50 and not VoucherCode.objects.exists()
    assert not AuditEntry.objects.exists()


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(reverse("rewards")).status_code == 302


# --- the forms ---


def _form_data(**overrides) -> dict:
    data = {
        "kind": "product",
        "name_en": "Picnic blanket",
        "name_nl": "Picknickkleed",
        "description_en": "",
        "description_nl": "",
        "image_url": "",
        "points": "800",
        "stock": "25",
        "stock_seen": "",
        "limit_per_member": "",
        "valid_from": "",
        "valid_until": "",
        "sort_order": "0",
        "active": "on",
        "reason": "Summer range",
        "tier-TOTAL_FORMS": "0",
        "tier-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return data


def _tier_rows(tiers, prices: dict) -> dict:
    data = {"tier-TOTAL_FORMS": str(len(tiers)), "tier-INITIAL_FORMS": str(len(tiers))}
    for i, tier in enumerate(tiers):
        data[f"tier-{i}-tier"] = str(tier.pk)
        data[f"tier-{i}-points"] = str(prices.get(tier.name, ""))
    return data


def test_create_a_reward_with_a_tier_price(client, marketer):
    silver, gold = TierFactory(name="Silver"), TierFactory(name="Gold")
    response = client.post(
        reverse("reward-new"),
        _form_data(
            channels=["pos", "app"],
            visible_tiers=[gold.pk],
            **_tier_rows([silver, gold], {"Gold": 650}),
        ),
    )
    reward = Reward.objects.get(name_en="Picnic blanket")
    assert response.status_code == 302 and response.url == reverse("reward", args=[reward.pk])
    assert (reward.kind, reward.points, reward.stock, reward.channels) == (
        "product",
        800,
        25,
        ["pos", "app"],
    )
    assert list(reward.visible_tiers.all()) == [gold]
    assert dict(reward.tier_prices.values_list("tier__name", "points")) == {"Gold": 650}
    audit = AuditEntry.objects.get()
    assert (audit.actor, audit.action, audit.reason) == (marketer, "reward_create", "Summer range")
    assert audit.details == {
        "reward_id": reward.pk,
        "changed": ["created", "visible_tiers", "tier_prices"],
    }


def test_edit_a_rewards_price_and_tier_price(client, marketer):
    silver, gold = TierFactory(name="Silver"), TierFactory(name="Gold")
    reward = ProductRewardFactory(name_en="Mug", points=300, stock=10)
    RewardTierPrice.objects.create(reward=reward, tier=silver, points=280)
    form = client.get(reverse("reward-edit", args=[reward.pk])).content.decode()
    assert 'value="280"' in form and 'name="stock_seen" value="10"' in form

    response = client.post(
        reverse("reward-edit", args=[reward.pk]),
        _form_data(
            kind="product",
            name_en="Mug",
            points="350",
            stock="10",
            stock_seen="10",
            reason="Price rise",
            **_tier_rows([silver, gold], {"Gold": 250}),
        ),
    )
    assert response.status_code == 302
    reward.refresh_from_db()
    assert reward.points == 350
    assert dict(reward.tier_prices.values_list("tier__name", "points")) == {"Gold": 250}
    audit = AuditEntry.objects.get()
    assert audit.action == "reward_change" and audit.reason == "Price rise"
    assert set(audit.details["changed"]) >= {"points", "name_nl", "tier_prices"}
    assert "stock" not in audit.details["changed"]


def test_a_stock_edit_keeps_the_redemptions_made_while_the_form_was_open(
    client, marketer, member_with
):
    reward = ProductRewardFactory(name_en="Mug", points=100, stock=10)
    _redeem(member_with, reward)  # stock 9 now; the editor saw 10
    data = _form_data(name_en="Mug", points="100", stock_seen="10", reason="Restock")
    client.post(reverse("reward-edit", args=[reward.pk]), {**data, "stock": "10"})
    reward.refresh_from_db()
    assert reward.stock == 9  # unchanged in the form: left alone
    client.post(reverse("reward-edit", args=[reward.pk]), {**data, "stock": "15"})
    reward.refresh_from_db()
    assert reward.stock == 14  # +5 on what is left


@pytest.mark.parametrize(
    "overrides,field",
    [
        ({"points": "0"}, "points"),
        ({"points": "abc"}, "points"),
        ({"points": str(2**31)}, "points"),
        ({"name_en": ""}, "name_en"),
        ({"kind": "spaceship"}, "kind"),
        ({"reason": ""}, "reason"),
        ({"stock": "-1"}, "stock"),
        ({"channels": ["fax"]}, "channels"),
        ({"image_url": "not a url"}, "image_url"),
        ({"valid_from": "2026-05-01T10:00", "valid_until": "2026-04-01T10:00"}, None),
    ],
)
def test_invalid_input_gives_a_field_error_and_saves_nothing(client, marketer, overrides, field):
    response = client.post(reverse("reward-new"), _form_data(**overrides))
    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors if field else form.non_field_errors()
    assert not Reward.objects.exists() and not AuditEntry.objects.exists()


def test_an_invalid_tier_price_is_a_field_error(client, marketer):
    gold = TierFactory(name="Gold")
    reward = RewardFactory(points=100)
    response = client.post(
        reverse("reward-edit", args=[reward.pk]),
        _form_data(kind="donation", points="120", **_tier_rows([gold], {"Gold": 0})),
    )
    assert response.status_code == 400
    assert response.context["prices"].forms[0].errors["points"]
    reward.refresh_from_db()
    assert reward.points == 100 and not reward.tier_prices.exists()


# --- the reward page and its voucher pool ---


def test_the_reward_page_has_a_weekly_chart_and_recent_redemptions(client, marketer, member_with):
    reward = ProductRewardFactory(name_en="Mug", points=100, stock=None)
    _redeem(member_with, reward)
    _redeem(member_with, reward, days_ago=7)
    _redeem(member_with, reward, days_ago=400)  # outside the 26 weeks
    response = client.get(reverse("reward", args=[reward.pk]))
    weeks = response.context["weeks"]
    assert len(weeks) == 26 and sum(n for _week, n in weeks) == 2
    assert weeks[-1][1] == 1 and weeks[-2][1] == 1
    assert response.context["chart"]["data"]["datasets"][0]["data"][-2:] == [1, 1]
    assert len(response.context["recent"]) == 3
    html = response.content.decode()
    assert 'id="redemptions-weekly"' in html and "chart.umd.min.js" in html
    assert_no_unmarked_inline_code(html, None)


def test_generate_codes_in_the_page(client, marketer):
    reward = VoucherRewardFactory()
    response = client.post(reverse("reward-codes-generate", args=[reward.pk]), {"count": "25"})
    assert response.status_code == 302 and response.url == reverse("reward", args=[reward.pk])
    assert reward.codes.filter(status="unused").count() == 25
    assert not BackgroundJob.objects.exists()


def test_a_large_generation_runs_as_a_job_with_progress(
    client, marketer, django_capture_on_commit_callbacks
):
    reward = VoucherRewardFactory()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("reward-codes-generate", args=[reward.pk]),
            {"count": "2500", "expires_at": "2027-01-31T23:59"},
        )
    job = BackgroundJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("job", args=[job.pk])
    job.refresh_from_db()
    assert job.status == "done" and (job.done, job.total) == (2500, 2500)
    assert reward.codes.count() == 2500
    assert not reward.codes.filter(expires_at__isnull=True).exists()
    page = client.get(reverse("job", args=[job.pk])).content.decode()
    assert "2500 codes added to the pool." in page


def test_generation_refuses_bad_counts_and_rewards_without_codes(client, marketer):
    voucher, product = VoucherRewardFactory(), ProductRewardFactory()
    for count in ("0", "", "100001", "x"):
        response = client.post(
            reverse("reward-codes-generate", args=[voucher.pk]), {"count": count}
        )
        assert response.status_code == 400
        assert "count" in response.context["generate_form"].errors
    assert (
        client.post(reverse("reward-codes-generate", args=[product.pk]), {"count": "5"}).status_code
        == 403
    )
    assert not VoucherCode.objects.exists()


def test_import_codes_from_a_csv_as_a_job(client, marketer, django_capture_on_commit_callbacks):
    reward = VoucherRewardFactory()
    VoucherCodeFactory(code="TAKEN-0001")  # another pool's code stays there
    content = b"code,expires_at\nabcd-0001,2027-01-31 23:59\nABCD-0002,\nTAKEN-0001,\n"
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("reward-codes-import", args=[reward.pk]),
            {"file": SimpleUploadedFile("codes.csv", content, content_type="text/csv")},
        )
    job = BackgroundJob.objects.get()
    assert response.url == reverse("job", args=[job.pk])
    job.refresh_from_db()
    assert job.status == "done" and job.result["added"] == 2 and job.result["skipped"] == 1
    assert set(reward.codes.values_list("code", flat=True)) == {"ABCD-0001", "ABCD-0002"}
    assert reward.codes.get(code="ABCD-0001").expires_at is not None


def test_an_import_with_a_bad_row_imports_nothing(
    client, marketer, django_capture_on_commit_callbacks
):
    reward = VoucherRewardFactory()
    content = b"code,expires_at\nGOOD-0001,\nBAD-0002,next tuesday\n"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("reward-codes-import", args=[reward.pk]),
            {"file": SimpleUploadedFile("codes.csv", content)},
        )
    job = BackgroundJob.objects.get()
    assert job.status == "failed" and "Row 3" in job.error
    assert not VoucherCode.objects.exists()


def test_an_import_refuses_other_files_at_once(client, marketer):
    reward = VoucherRewardFactory()
    response = client.post(
        reverse("reward-codes-import", args=[reward.pk]),
        {"file": SimpleUploadedFile("codes.pdf", b"%PDF")},
    )
    assert response.status_code == 400 and "file" in response.context["import_form"].errors
    assert not BackgroundJob.objects.exists()


def test_the_pages_have_no_inline_code(client, marketer):
    reward = VoucherRewardFactory()
    for url in (
        reverse("rewards"),
        reverse("reward", args=[reward.pk]),
        reverse("reward-new"),
        reverse("reward-edit", args=[reward.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert_no_unmarked_inline_code(response.content.decode(), None)


# --- query bounds ---


def _catalogue(n: int, member_with):
    tiers = [TierFactory(), TierFactory()]
    first = None
    for i in range(n):
        reward = (VoucherRewardFactory if i % 2 else ProductRewardFactory)(stock=50 + i)
        reward.visible_tiers.set(tiers[: i % 3])
        for tier in tiers[: i % 3]:
            RewardTierPrice.objects.create(reward=reward, tier=tier, points=90)
        if i % 2:
            VoucherCodeFactory(reward=reward, code=f"Q-{n}-{i}")
        first = first or reward
    return first  # visible to every tier: anyone may redeem it


@pytest.mark.parametrize("n", [3, 40])
def test_the_list_and_a_reward_page_take_a_bounded_number_of_queries(
    client, marketer, member_with, django_assert_max_num_queries, n
):
    reward = _catalogue(n, member_with)
    _redeem(member_with, reward)
    with django_assert_max_num_queries(12):
        assert client.get(reverse("rewards")).status_code == 200
    with django_assert_max_num_queries(12):
        assert client.get(reverse("rewards"), {"page": "2", "low_stock": "on"}).status_code == 200
    with django_assert_max_num_queries(16):
        assert client.get(reverse("reward", args=[reward.pk])).status_code == 200
    with django_assert_max_num_queries(14):
        assert client.get(reverse("reward-edit", args=[reward.pk])).status_code == 200


# --- the selectors and services behind them ---


def test_rewards_catalogue_counts_only_confirmed_redemptions(member_with):
    reward = ProductRewardFactory(points=10, stock=5)
    _redeem(member_with, reward)
    cancelled = _redeem(member_with, reward, confirm=False)
    services.redemption_cancel(redemption=cancelled)
    row = selectors.rewards_catalogue().get(pk=reward.pk)
    assert (row.reserved, row.redeemed_30d, row.redeemed_total, row.stock) == (0, 1, 1, 4)


def test_reward_save_refuses_a_stock_below_zero(member_with, staff_user):
    from loyalty_site.errors import DomainError

    reward = ProductRewardFactory(points=10, stock=2)
    _redeem(member_with, reward)
    _redeem(member_with, reward)  # 0 left; the editor saw 2 and takes 1 away
    reward.stock = 1
    with pytest.raises(DomainError) as refused:
        services.reward_save(
            reward=reward, stock_seen=2, actor=staff_user("Marketing"), reason="Fewer"
        )
    assert "stock" in refused.value.fields


def test_voucher_codes_import_skips_known_codes():
    reward = VoucherRewardFactory()
    VoucherCodeFactory(reward=reward, code="KNOWN-0001")
    added = services.voucher_codes_import(
        reward=reward, rows=[(" known-0001 ", None), ("new-0001", None), ("NEW-0001", None)]
    )
    assert added == 1
    assert set(reward.codes.values_list("code", flat=True)) == {"KNOWN-0001", "NEW-0001"}


def test_an_xlsx_file_is_read_too():
    import tablib

    from rewards.jobs import codes_file_rows

    data = tablib.Dataset(headers=["code", "expires_at"])
    data.append(["XLSX-0001", "2027-02-01 10:00"])
    data.append(["XLSX-0002", None])
    rows, errors = codes_file_rows("codes.xlsx", data.export("xlsx"))
    assert errors == [] and [code for code, _at in rows] == ["XLSX-0001", "XLSX-0002"]
    assert rows[0][1] is not None and rows[1][1] is None


def test_an_empty_catalogue_says_so(client, marketer):
    html = client.get(reverse("rewards")).content.decode()
    assert "No rewards match these filters." in html
