"""The dashboard in Chromium: the period chooser changes the figures; the page in Dutch."""

from datetime import timedelta

from playwright.sync_api import expect

from loyalty_site.dashboard.days import local_today
from loyalty_site.models import DashboardDay


def _history():
    today = local_today()
    DashboardDay.objects.bulk_create(
        DashboardDay(
            day=today - timedelta(days=i),
            currency="EUR",
            points_issued=10,
            points_outstanding=1000 + i,
        )
        for i in range(1, 61)
    )


def test_choosing_another_period_changes_the_figures(page, sign_in):
    _history()
    sign_in("Finance", first_name="Femke")
    page.goto("/")
    expect(page.locator("h1")).to_contain_text("Welcome, Femke")
    issued = page.locator('[data-figure="points_issued"] .value')
    expect(issued).to_have_text("290")  # 29 stored days of the last 30, today has none yet
    page.select_option("#id_period", "7d")
    page.click("form.dashboard-period button[type=submit]")
    expect(issued).to_have_text("60")
    expect(page.locator('[data-figure="points_issued"] .change')).to_contain_text("▼")
    expect(page.locator("canvas[data-chart=chart-points]")).to_have_attribute("data-drawn", "1")
    # The numbers behind a chart, readable without script.
    page.locator('[data-panel="chart-chart-points"] summary').click()
    expect(page.locator('[data-panel="chart-chart-points"] table')).to_be_visible()


def test_the_dashboard_in_dutch(page, sign_in):
    sign_in("Marketing", language="nl")
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator('[data-panel="campaigns"]')).to_be_visible()
    expect(page.locator('[data-figure="enrolments"]')).to_be_visible()
