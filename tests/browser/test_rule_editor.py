"""Marketing's earning-rule editor in Chromium: pick conditions, save, simulate beside the form."""

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import EarningRule
from campaigns.services import purchase_record
from members import background
from members.tasks import job_run
from tests.factories import MemberFactory


def week_of_purchases():
    """A coffee and a dairy purchase at noon on each of the last seven days."""
    member = MemberFactory()
    for n in range(1, 8):
        at = (timezone.localtime() - timedelta(days=n)).replace(hour=12, minute=0)
        for category in ("coffee", "dairy"):
            purchase_record(
                member=member, channel="pos", external_id=f"{category}-{n}",
                amount=Decimal("10.00"), currency="EUR", occurred_at=at, store="ams",
                lines=[{"sku": f"SKU-{category}", "category": category, "quantity": 1,
                        "amount": Decimal("10.00")}],
            )  # fmt: skip


@pytest.fixture
def slow_worker(monkeypatch):
    """Jobs run in a thread a moment after they are queued, as a worker would take them, so
    that the page shows the progress bar before the result (tests otherwise run tasks at once).
    """
    threads = []

    def later(job_id):
        def run():
            time.sleep(1.5)
            try:
                background.job_run(job_id)
            finally:
                connection.close()

        thread = threading.Thread(target=run, daemon=True)
        threads.append(thread)
        thread.start()

    monkeypatch.setattr(job_run, "delay", later)
    yield
    for thread in threads:
        thread.join(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_a_marketer_creates_a_rule_with_pickers_and_simulates_it(page, sign_in, slow_worker):
    week_of_purchases()
    sign_in("Marketing")
    page.goto("/rules/")
    page.get_by_role("link", name="New rule").click()
    page.fill("#id_name", "Saturday coffee")
    page.select_option("#id_kind", "bonus")
    page.fill("#id_bonus_points", "30")
    page.locator("#id_categories input[value=coffee]").check()
    page.get_by_label("Saturday").check()
    page.fill("#id_reason", "Weekend trial")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator(".message.success")).to_contain_text("Rule “Saturday coffee” created.")

    rule = EarningRule.objects.get(name="Saturday coffee")
    assert (rule.categories, rule.days_of_week, rule.bonus_points) == (["coffee"], [5], 30)

    # Simulated as edited: one Saturday in the last week, its coffee purchase gets 30 points.
    page.get_by_role("button", name="Simulate as edited").click()
    expect(page.locator("#simulation progress")).to_be_visible()
    expect(page.locator("#simulation [data-figure=points]")).to_have_text("30", timeout=20_000)
    expect(page.locator("#simulation [data-figure=members]")).to_have_text("1")
    expect(page.locator("#simulation canvas[data-drawn]")).to_have_count(1)
    expect(page.locator("#simulation progress")).to_have_count(0)
    # The list shows it with its conditions in words.
    page.get_by_role("link", name="Earning rules").first.click()
    row = page.locator("tr", has_text="Saturday coffee")
    expect(row).to_contain_text("Categories: coffee; Saturday")
    expect(row).to_contain_text("+30 points")


@pytest.mark.django_db(transaction=True)
def test_the_rule_pages_in_dutch(page, sign_in):
    week_of_purchases()
    EarningRule.objects.create(name="Basis", rate=Decimal(1))
    sign_in("Marketing", language="nl")
    page.goto("/rules/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    page.get_by_role("link", name="Basis").first.click()
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    expect(page.locator("#rule-form")).to_be_visible()
    expect(page.locator("#simulation")).to_be_attached()
    # A field refused in Dutch: Django's own message for a value below its minimum.
    page.evaluate("document.getElementById('rule-form').noValidate = true")  # the server's check
    page.fill("#id_bonus_points", "-5")
    page.fill("#id_reason", "test")
    page.locator("#rule-form button[type=submit]").click()
    error = page.locator("#id_bonus_points_error")
    expect(error).to_contain_text("Zorg ervoor dat deze waarde minstens 0 is.")
