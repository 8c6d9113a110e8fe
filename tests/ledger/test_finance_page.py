"""The finance page: who may use it, what each action does, bad input, CSP, query bound."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from ledger import services
from ledger.models import PeriodClose, PointValue, RedemptionEstimate
from members.models import BackgroundJob
from tests.factories import MemberFactory
from tests.ledger.finance_histories import START, history_run
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db
ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]


@pytest.fixture
def finance(client, staff_user):
    client.force_login(staff_user("Finance"))
    return client


@pytest.mark.parametrize("role", ROLES)
def test_only_finance_and_administrators_see_the_page(client, staff_user, role):
    client.force_login(staff_user(role))
    allowed = role in ("Finance", "Administrator")
    for name in ("finance",):
        assert client.get(reverse(name)).status_code == (200 if allowed else 403)
    for section in ("over_time", "rollforward", "breakage", "deferred"):
        response = client.get(reverse("finance-section", args=[section]))
        assert response.status_code == (200 if allowed else 403), section
    for name in ("finance-close", "finance-value", "finance-estimate", "finance-reconcile"):
        response = client.post(reverse(name), {})
        assert (response.status_code == 403) == (not allowed), (role, name)


def test_the_page_shows_the_report_and_passes_the_csp_check(finance):
    member = MemberFactory()
    services.points_earn(member=member, points=1234, at=START)
    response = finance.get(reverse("finance"), {"as_of": "2025-02-01", "period": "2025-01"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "1,234" in html
    assert "12.34" in html
    assert_no_unmarked_inline_code(html, None)
    # The slow reports load after the page, each from its own address with the page's query.
    sections = {
        "over_time": "liability-over-time",
        "rollforward": "Closes to zero",
        "breakage": "2025-01",
        "deferred": "Worked example",
    }
    for section, shown in sections.items():
        url = reverse("finance-section", args=[section])
        assert f'hx-get="{url}?as_of=2025-02-01&amp;period=2025-01"' in html, section
        part = finance.get(url, {"as_of": "2025-02-01", "period": "2025-01"})
        assert part.status_code == 200 and shown in part.content.decode(), section
        assert_no_unmarked_inline_code(part.content.decode(), None)
    assert finance.get(reverse("finance-section", args=["nothing"])).status_code == 404
    bad = finance.get(reverse("finance-section", args=["rollforward"]), {"as_of": "tomorrow"})
    assert bad.status_code == 200


def test_bad_dates_are_form_errors_not_500s(finance):
    response = finance.get(reverse("finance"), {"as_of": "tomorrow", "period": "13-2025"})
    assert response.status_code == 200
    assert "YYYY-MM-DD" in response.content.decode()


def test_the_exports_download(finance):
    services.points_earn(member=MemberFactory(), points=50, at=START)
    for kind in ("summary", "expiry_month", "tier", "rollforward", "deferred"):
        response = finance.get(reverse("finance"), {"export": kind, "format": "csv"})
        assert response.status_code == 200, kind
        assert response["Content-Type"].startswith("text/csv")
    response = finance.get(reverse("finance"), {"export": "tier", "format": "xlsx"})
    assert response.content[:2] == b"PK"


def test_closing_a_month_from_the_page(finance):
    services.points_earn(member=MemberFactory(), points=50, at=START)
    response = finance.post(reverse("finance-close"), {"month": "2025-01", "note": "books"})
    assert response.status_code == 302
    close = PeriodClose.objects.get()
    assert close.closed_by.groups.filter(name="Finance").exists()
    assert close.figures["rollforward"]["closing"][0] == 50
    # Twice: a message, nothing more written.
    finance.post(reverse("finance-close"), {"month": "2025-01"})
    assert PeriodClose.objects.count() == 1
    response = finance.post(reverse("finance-close"), {"month": "January"}, follow=True)
    assert "YYYY-MM" in response.content.decode()
    assert PeriodClose.objects.count() == 1


def test_recording_a_value_and_an_estimate_from_the_page(finance):
    finance.post(
        reverse("finance-value"),
        {"value": "0.012", "valid_from": "2026-01-01", "reason": "partner rate"},
    )
    value = PointValue.objects.get()
    assert (value.value, value.reason) == (Decimal("0.012"), "partner rate")
    assert value.recorded_by is not None
    finance.post(
        reverse("finance-value"), {"value": "-1", "valid_from": "2026-02-01", "reason": "x"}
    )
    finance.post(reverse("finance-value"), {"value": "0.02", "valid_from": "2026-02-01"})
    assert PointValue.objects.count() == 1
    finance.post(
        reverse("finance-estimate"), {"rate": "0.75", "valid_from": "2026-01-01", "reason": "Q4"}
    )
    assert RedemptionEstimate.objects.get().rate == Decimal("0.75")
    response = finance.post(
        reverse("finance-estimate"),
        {"rate": "1.5", "valid_from": "2026-01-01", "reason": "Q4"},
        follow=True,
    )
    assert RedemptionEstimate.objects.count() == 1
    assert "at most 1" in response.content.decode()


def test_the_per_member_export_and_the_reconciliation_run_as_jobs(
    finance, django_capture_on_commit_callbacks
):
    services.points_earn(member=MemberFactory(), points=50, at=START)
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(reverse("finance-member-export"), {"as_of": "", "format": "csv"})
    job = BackgroundJob.objects.get(kind="ledger.liability_members")
    assert response["Location"] == reverse("job", args=[job.pk])
    job.refresh_from_db()
    assert job.status == "done"  # Celery runs eagerly in the tests
    assert job.file.open("rb").read().decode().splitlines()[1].endswith(",50")
    with django_capture_on_commit_callbacks(execute=True):
        finance.post(reverse("finance-reconcile"))
    job = BackgroundJob.objects.get(kind="ledger.reconcile")
    assert job.result["count"] == 0 and job.status == "done"
    assert "No mismatches" in finance.get(reverse("job", args=[job.pk])).content.decode()


def test_the_page_answers_in_a_bounded_number_of_queries(
    finance, settings, django_assert_max_num_queries
):
    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    history_run(2, steps=20, members=2)
    urls = [reverse("finance")] + [
        reverse("finance-section", args=[name])
        for name in ("over_time", "rollforward", "breakage", "deferred")
    ]
    params = {"as_of": (START + timedelta(days=60)).date().isoformat()}
    # The page itself reads the liability and a few lists; each section its own report (the
    # over-time chart: one query per month end).
    bounds = [30, 35, 25, 15, 20]
    for bound, url in zip(bounds, urls, strict=True):
        with django_assert_max_num_queries(bound):
            finance.get(url, params)
    history_run(3, steps=80, members=8)
    for bound, url in zip(bounds, urls, strict=True):
        with django_assert_max_num_queries(bound):
            assert finance.get(url, params).status_code == 200
