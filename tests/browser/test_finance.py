"""Finance's page in Chromium: the report as of a date, a month closed, a value recorded."""

from datetime import datetime, timedelta

from django.utils import timezone
from playwright.sync_api import expect

from ledger import services
from ledger.models import PeriodClose, PointValue, ReconciliationRun
from tests.factories import MemberFactory


def _history():
    month = timezone.localdate().replace(day=1)
    before_last = ((month - timedelta(days=1)).replace(day=1) - timedelta(days=1)).replace(day=1)
    at = timezone.make_aware(datetime.combine(before_last, datetime.min.time())) + timedelta(days=3)
    member = MemberFactory()
    services.points_earn(member=member, points=4321, at=at)
    services.points_redeem(member=member, points=321, at=at + timedelta(days=1))
    return before_last


def test_finance_reads_the_liability_closes_a_month_and_records_a_value(page, sign_in):
    closable = _history()
    sign_in("Finance")
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/finance/")
    expect(page.locator("h1")).to_have_text("Finance")
    expect(page.locator(".figures")).to_contain_text("4,000")
    expect(page.locator("canvas[data-chart=liability-expiry]")).to_be_visible()
    page.fill("#id_as_of", closable.replace(day=4).isoformat())
    page.fill("#id_period", closable.strftime("%Y-%m"))
    page.click("form.toolbar button[type=submit]")
    expect(page.locator(".figures")).to_contain_text("4,321")
    page.fill("#close_month", closable.strftime("%Y-%m"))
    page.click("form[action='/finance/close/'] button[type=submit]")
    expect(page.locator(".message")).to_contain_text("closed")
    assert PeriodClose.objects.get().figures["rollforward"]["closing"][0] == 4000
    page.fill("#value_value", "0.0125")
    page.fill("#value_valid_from", timezone.localdate().isoformat())
    page.fill("#value_reason", "partner rate")
    page.click("form[action='/finance/value/'] button[type=submit]")
    expect(page.locator(".message")).to_contain_text("recorded")
    assert PointValue.objects.get().reason == "partner rate"


def test_the_page_in_dutch(page, sign_in):
    sign_in("Finance", language="nl")
    page.goto("/finance/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("canvas[data-chart=liability-over-time]")).to_be_visible()


def test_run_now_then_the_page_shows_the_last_run(page, sign_in):
    _history()
    sign_in("Finance")
    page.goto("/finance/")
    panel = page.locator(".panel", has=page.locator("h2", has_text="Reconciliation"))
    expect(panel).to_contain_text("No run yet.")
    panel.locator("button[type=submit]").click()
    expect(page.locator("main")).to_contain_text("No mismatches")  # the job's page
    page.goto("/finance/")
    expect(panel).to_contain_text("Run now (finance page)")
    expect(panel).to_contain_text("1 account checked")
    assert ReconciliationRun.objects.get().trigger == "page"
