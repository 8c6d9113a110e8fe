"""The audit log and the exports in Chromium: an administrator filters the log by member; a
customer-service agent exports the members as CSV and downloads it; the pages in Dutch."""

import re

import pytest
from playwright.sync_api import expect

from members.services import audit_record
from tests.factories import MemberFactory


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_an_administrator_filters_the_audit_log_by_member(page, sign_in, staff_user):
    agent = staff_user("Customer service")
    anna, bert = MemberFactory(), MemberFactory()
    audit_record(actor=agent, action="card_block", member=anna, reason="Lost in Utrecht")
    audit_record(actor=agent, action="member_update", member=bert, reason="Moved house")
    sign_in("Administrator")
    page.goto("/")
    page.locator("nav.sidebar").get_by_role("link", name="Audit log").click()
    expect(page.locator("h1")).to_have_text("Audit log")
    table = page.locator("table.audit-log")
    expect(table).to_contain_text("Lost in Utrecht")
    expect(table).to_contain_text("Moved house")
    page.fill("#id_member", str(anna.pk))
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(rf"member={anna.pk}"))
    expect(table).to_contain_text("Card blocked")
    expect(table).to_contain_text("Lost in Utrecht")
    expect(table).not_to_contain_text("Moved house")
    expect(table.get_by_role("link", name=f"#{anna.pk}")).to_be_visible()


def test_a_service_agent_exports_members_as_csv_and_downloads_it(page, sign_in):
    MemberFactory(first_name="Fenna", email="fenna@example.nl")
    sign_in("Customer service")
    page.goto("/exports/")
    expect(page.locator("h1")).to_have_text("Exports")
    page.select_option("#id_export", "members")
    page.select_option("#id_file_format", "csv")
    page.get_by_role("button", name="Start the export").click()
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    download_button = page.get_by_role("link", name="Download")
    expect(download_button).to_be_visible()
    with page.expect_download() as info:
        download_button.click()
    download = info.value
    assert re.fullmatch(r"members-\d{4}-\d{2}-\d{2}\.csv", download.suggested_filename)
    with open(download.path(), encoding="utf-8-sig") as file:
        text = file.read()
    assert text.startswith("id,public id,")
    assert "fenna@example.nl" in text
    # The exports page lists the job with its download link.
    page.goto("/exports/")
    expect(page.locator("table")).to_contain_text("Members (personal data)")
    expect(page.locator("table").get_by_role("link", name="Download")).to_be_visible()


def test_the_pages_in_dutch(page, sign_in):
    sign_in("Administrator", language="nl")
    for url in ("/audit/", "/exports/"):
        page.goto(url)
        expect(page.locator("html")).to_have_attribute("lang", "nl")
        expect(page.locator("h1")).to_be_visible()
