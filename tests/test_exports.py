"""The exports page (/exports/): each export's columns and rows in CSV and XLSX, formula
escaping, jobs with progress and downloads, permissions per export and role, the audit."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from campaigns.models import Campaign, CampaignMessage, CampaignResult
from ledger import services as ledger_services
from loyalty_site import exports
from members.models import AuditEntry, BackgroundJob, Member
from rewards import services as reward_services
from tests.factories import MemberFactory
from tests.rewards.factories import ProductRewardFactory, RewardFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

URL = "/exports/"
ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]
# Who may run which export (issue 14, item 5).
ALLOWED = {
    "members": {"Customer service", "Administrator"},
    "entries": {"Finance", "Customer service", "Administrator"},
    "redemptions": {"Customer service", "Administrator", "Marketing"},
    "shipping": {"Customer service", "Administrator"},
    "messages": {"Marketing", "Administrator"},
    "results": {"Marketing", "Administrator"},
}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _signed_in(client, staff_user, role):
    user = staff_user(role)
    client.force_login(user)
    return user


def _run(client, capture, **data):
    """Post the form; the job runs on commit (Celery eager in tests). The job, or the answer."""
    with capture(execute=True):
        response = client.post(URL, {"file_format": "csv", **data})
    if response.status_code != 302:
        return response
    job = BackgroundJob.objects.get(pk=int(response["Location"].rstrip("/").rsplit("/", 1)[1]))
    assert response["Location"] == reverse("job", args=[job.pk])
    return job


def _download(client, job) -> bytes:
    response = client.get(reverse("job-download", args=[job.pk]))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def _csv(client, job) -> list[list[str]]:
    return list(csv.reader(io.StringIO(_download(client, job).decode("utf-8-sig"))))


def _xlsx(client, job) -> list[tuple]:
    sheet = openpyxl.load_workbook(io.BytesIO(_download(client, job))).active
    return list(sheet.iter_rows(values_only=True))


def test_the_url_name():
    assert reverse("exports") == URL


@pytest.mark.parametrize("role", ROLES)
def test_the_page_offers_each_role_only_its_exports(client, staff_user, role):
    _signed_in(client, staff_user, role)
    response = client.get(URL)
    assert response.status_code == 200
    offered = {key for key, _label in response.context["form"].fields["export"].choices}
    assert offered == {key for key, roles in ALLOWED.items() if role in roles}
    assert_no_unmarked_inline_code(response.content.decode(), None)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("export", sorted(ALLOWED))
def test_an_export_the_role_may_not_run_is_refused(
    client, staff_user, django_capture_on_commit_callbacks, role, export
):
    _signed_in(client, staff_user, role)
    campaign = Campaign.objects.create(name="Spring", kind="message")
    answer = _run(client, django_capture_on_commit_callbacks, export=export, campaign=campaign.pk)
    if role in ALLOWED[export]:
        assert isinstance(answer, BackgroundJob)
        assert answer.status == BackgroundJob.Status.DONE, answer.error
    else:
        assert answer.status_code == 403
        assert not BackgroundJob.objects.exists()


def test_a_staff_user_without_any_export_gets_403(client, django_user_model):
    user = django_user_model.objects.create_user("nobody", is_staff=True)
    client.force_login(user)
    assert client.get(URL).status_code == 403


def test_members_export_columns_rows_escaping_and_audit(
    client, staff_user, django_capture_on_commit_callbacks
):
    agent = _signed_in(client, staff_user, "Customer service")
    anna = MemberFactory(first_name="=cmd|' /C calc'!A0", last_name="Jansen", email="a@x.nl")
    ledger_services.points_earn(member=anna, points=120)
    MemberFactory(first_name="@SUM(1)", last_name="+31", email="b@x.nl")
    job = _run(client, django_capture_on_commit_callbacks, export="members")
    assert job.status == BackgroundJob.Status.DONE, job.error
    assert (job.done, job.total, job.result) == (2, 2, {"rows": 2, "format": "csv"})
    rows = _csv(client, job)
    assert rows[0] == [
        "id",
        "public id",
        "external customer number",
        "first name",
        "last name",
        "e-mail",
        "phone",
        "birth date",
        "language",
        "status",
        "tier",
        "balance",
        "enrolled at",
        "enrolled through",
    ]
    assert rows[1][:7] == [
        str(anna.pk),
        str(anna.public_id),
        "",
        "'=cmd|' /C calc'!A0",
        "Jansen",
        "a@x.nl",
        "",
    ]
    assert rows[1][11] == "120"
    assert rows[2][3:5] == ["'@SUM(1)", "'+31"]
    # Exporting personal data is itself audited: who, the filters, how many rows; no values.
    audit = AuditEntry.objects.get(action="members_export")
    assert audit.actor == agent
    assert audit.details == {"filters": {"format": "csv"}, "rows": 2}


def test_members_export_as_xlsx_keeps_numbers_and_times(
    client, staff_user, django_capture_on_commit_callbacks
):
    _signed_in(client, staff_user, "Administrator")
    anna = MemberFactory(
        first_name="-2+3", enrolled_at=datetime(2026, 5, 1, 10, tzinfo=UTC)
    )  # 12:00 in Amsterdam
    ledger_services.points_earn(member=anna, points=75)
    job = _run(client, django_capture_on_commit_callbacks, export="members", file_format="xlsx")
    assert job.status == BackgroundJob.Status.DONE, job.error
    assert job.file.name.endswith(".xlsx")
    header, row = _xlsx(client, job)
    assert header[0] == "id" and header[11] == "balance"
    assert row[0] == anna.pk
    assert row[3] == "'-2+3"
    assert row[11] == 75
    assert row[12] == datetime(2026, 5, 1, 12, 0)


def test_members_export_filters_by_enrolment_date(
    client, staff_user, django_capture_on_commit_callbacks
):
    _signed_in(client, staff_user, "Customer service")
    MemberFactory(enrolled_at=datetime(2026, 1, 15, 12, tzinfo=UTC))
    june = MemberFactory(enrolled_at=datetime(2026, 6, 15, 12, tzinfo=UTC))
    job = _run(
        client,
        django_capture_on_commit_callbacks,
        export="members",
        date_from="2026-06-01",
        date_to="2026-06-30",
    )
    rows = _csv(client, job)
    assert [r[0] for r in rows[1:]] == [str(june.pk)]
    assert AuditEntry.objects.get(action="members_export").details["filters"] == {
        "format": "csv",
        "date_from": "2026-06-01",
        "date_to": "2026-06-30",
    }


def test_ledger_entries_export(client, staff_user, django_capture_on_commit_callbacks):
    _signed_in(client, staff_user, "Finance")
    member = MemberFactory()
    ledger_services.points_earn(member=member, points=50, reference="=1+1")
    job = _run(client, django_capture_on_commit_callbacks, export="entries", file_format="xlsx")
    header, row = _xlsx(client, job)
    assert header[:6] == ("entry", "created at", "member", "kind", "points", "balance after")
    assert row[2] == str(member.public_id)
    assert (row[3], row[4], row[5]) == ("earn", 50, 50)
    assert row[7] == "'=1+1"
    # Ledger entries hold no personal values: not audited as a personal-data export.
    assert not AuditEntry.objects.filter(action__endswith="_export").exists()


def _redeemed(points=500, **reward):
    member = MemberFactory()
    ledger_services.points_earn(member=member, points=points)
    reward = (ProductRewardFactory if reward.pop("product", False) else RewardFactory)(**reward)
    return member, reward_services.redemption_redeem(
        member=member, reward=reward, shipping_address="Dorpsstraat 1\n1234 AB Ergens"
    )


def test_redemptions_export(client, staff_user, django_capture_on_commit_callbacks):
    _signed_in(client, staff_user, "Marketing")
    member, redemption = _redeemed(name_en="Tote bag", points=100)
    job = _run(client, django_capture_on_commit_callbacks, export="redemptions")
    rows = _csv(client, job)
    assert rows[0][:6] == ["redemption", "created at", "member", "reward", "points", "status"]
    assert rows[1][:6] == [
        str(redemption.pk),
        rows[1][1],
        str(member.public_id),
        "Tote bag",
        "100",
        "confirmed",
    ]


def test_shipping_list_export_by_status_is_audited(
    client, staff_user, django_capture_on_commit_callbacks
):
    agent = _signed_in(client, staff_user, "Customer service")
    member, redemption = _redeemed(product=True, name_en="Mug", points=100)
    Member.objects.filter(pk=member.pk).update(first_name="Piet", last_name="Puk", email="p@x.nl")
    job = _run(client, django_capture_on_commit_callbacks, export="shipping", status="to_ship")
    rows = _csv(client, job)
    assert rows[0] == [
        "redemption",
        "redeemed at",
        "member",
        "name",
        "e-mail",
        "phone",
        "reward",
        "shipping address",
        "fulfilment",
        "tracking code",
    ]
    assert rows[1][0] == str(redemption.pk)
    assert rows[1][3:5] == ["Piet Puk", "p@x.nl"]
    assert rows[1][7] == "Dorpsstraat 1\n1234 AB Ergens"
    assert rows[1][8] == "to_ship"
    job = _run(client, django_capture_on_commit_callbacks, export="shipping", status="shipped")
    assert len(_csv(client, job)) == 1
    audits = AuditEntry.objects.filter(action="shipping_export", actor=agent)
    assert sorted(a.details["rows"] for a in audits) == [0, 1]
    assert "Piet" not in str([a.details for a in audits])


def test_campaign_messages_and_results_exports(
    client, staff_user, django_capture_on_commit_callbacks
):
    _signed_in(client, staff_user, "Marketing")
    spring = Campaign.objects.create(name="Spring", kind="message")
    other = Campaign.objects.create(name="Autumn", kind="message")
    anna = MemberFactory()
    message = CampaignMessage.objects.create(campaign=spring, member=anna, channel="sms")
    CampaignMessage.objects.create(campaign=other, member=anna, channel="sms")
    job = _run(client, django_capture_on_commit_callbacks, export="messages", campaign=spring.pk)
    rows = _csv(client, job)
    assert rows[0][:5] == ["message", "campaign", "member", "channel", "status"]
    assert [r[0] for r in rows[1:]] == [str(message.pk)]
    assert rows[1][1:4] == ["Spring", str(anna.public_id), "sms"]

    CampaignResult.objects.create(
        campaign=spring,
        window="campaign",
        metric="revenue",
        starts_at=datetime(2026, 3, 1, tzinfo=UTC),
        ends_at=datetime(2026, 3, 31, tzinfo=UTC),
        treated_n=4,
        treated_sum=Decimal("100"),
        treated_sum_of_squares=Decimal("2600"),
        control_n=2,
        control_sum=Decimal("30"),
        control_sum_of_squares=Decimal("500"),
    )
    job = _run(
        client,
        django_capture_on_commit_callbacks,
        export="results",
        campaign=spring.pk,
        file_format="xlsx",
    )
    header, row = _xlsx(client, job)
    assert header[:3] == ("campaign", "window", "metric")
    assert row[:3] == ("Spring", "campaign", "revenue")
    assert (row[5], row[7], row[8], row[10]) == (4, 25, 2, 15)


def test_campaign_exports_need_a_campaign_and_dates_in_order(
    client, staff_user, django_capture_on_commit_callbacks
):
    _signed_in(client, staff_user, "Marketing")
    response = _run(client, django_capture_on_commit_callbacks, export="messages")
    assert response.status_code == 200
    assert "campaign" in response.context["form"].errors
    response = _run(
        client,
        django_capture_on_commit_callbacks,
        export="redemptions",
        date_from="2026-02-02",
        date_to="2026-02-01",
    )
    assert "date_to" in response.context["form"].errors
    response = _run(
        client, django_capture_on_commit_callbacks, export="redemptions", file_format="pdf"
    )
    assert "file_format" in response.context["form"].errors
    assert not BackgroundJob.objects.exists()


def test_a_few_thousand_rows_run_as_a_job_with_progress_and_download(
    client, staff_user, django_capture_on_commit_callbacks, monkeypatch
):
    _signed_in(client, staff_user, "Customer service")
    Member.objects.bulk_create(
        [Member(email=f"m{i}@example.nl", first_name=f"M{i}") for i in range(3000)]
    )
    seen = []
    real = exports._write_csv

    def watched(out, resource, rows, progress, total):
        def report(done, total=None, **kwargs):
            seen.append(done)
            progress(done, total, **kwargs)

        return real(out, resource, rows, report, total)

    monkeypatch.setattr(exports, "_write_csv", watched)
    monkeypatch.setattr(exports, "CHUNK_SIZE", 500)
    job = _run(client, django_capture_on_commit_callbacks, export="members")
    assert job.status == BackgroundJob.Status.DONE, job.error
    assert (job.done, job.total, job.percent) == (3000, 3000, 100)
    assert seen[0] == 1 and seen[-1] == 3000 and len(seen) == 3000
    assert len(_csv(client, job)) == 3001
    # The page lists it with its download link.
    html = client.get(URL).content.decode()
    assert reverse("job-download", args=[job.pk]) in html


@pytest.mark.parametrize("n", [1, 8])
def test_the_page_answers_in_a_bounded_number_of_queries(
    client, staff_user, django_capture_on_commit_callbacks, django_assert_max_num_queries, n
):
    _signed_in(client, staff_user, "Administrator")
    for _ in range(n):
        _run(client, django_capture_on_commit_callbacks, export="entries")
    Campaign.objects.bulk_create([Campaign(name=f"C{i}", kind="message") for i in range(n)])
    with django_assert_max_num_queries(10):
        response = client.get(URL)
    assert len(response.context["jobs"]) == n


def test_formula_escaping():
    for text in ("=1+1", "+1", "-1", "@A1", "\tx", "\rx"):
        assert exports.cell_escape(text) == "'" + text
    assert exports.cell_escape("Jansen") == "Jansen"
    assert exports.cell_escape(-5) == -5  # numbers are numbers, not text
