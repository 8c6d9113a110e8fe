"""A finished job's own page (/jobs/<id>/), opened directly, draws its result's charts."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import EarningRule
from campaigns.views.rules import SIMULATE_KIND
from members.background import job_start
from tests.browser.test_rule_editor import week_of_purchases


@pytest.mark.django_db(transaction=True)
def test_a_finished_simulation_opened_directly_draws_its_chart(page, sign_in):
    week_of_purchases()
    rule = EarningRule.objects.create(name="Coffee bonus", kind="bonus", bonus_points=5)
    user = sign_in("Marketing")
    today = timezone.localdate()
    params = {
        "rule_id": rule.pk,
        "mode": "saved",
        "data": {},
        "first": (today - timedelta(days=8)).isoformat(),
        "last": (today - timedelta(days=1)).isoformat(),
    }
    job = job_start(SIMULATE_KIND, params, user)  # tests run tasks at once: done now
    job.refresh_from_db()
    assert job.status == "done", job.error

    page.goto(f"/jobs/{job.pk}/")

    expect(page.locator("[data-figure=points]")).to_have_text("70")
    canvas = page.locator("canvas[data-chart]")
    expect(canvas).to_have_attribute("data-drawn", "1")
    assert page.evaluate("Boolean(Chart.getChart(document.querySelector('canvas[data-chart]')))")
