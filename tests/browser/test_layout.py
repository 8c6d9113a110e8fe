"""Every back-office page's frame: the sidebar for the role, the search box, the language switch."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import PASSWORD


def test_sign_in_and_switch_to_dutch_on_the_start_page(page, staff_user):
    user = staff_user("Customer service")
    user.set_password(PASSWORD)
    user.save()
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/\?next=/$"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Welcome")
    expect(page.locator("nav.sidebar")).to_contain_text("Customer service")
    page.select_option("form.language-switch select", "nl")
    expect(page.locator("h1")).to_contain_text("Welkom")
    expect(page.locator("html")).to_have_attribute("lang", "nl")


def test_the_sidebar_shows_only_the_roles_sections(page, sign_in):
    sign_in("Finance")
    page.goto("/")
    sidebar = page.locator("nav.sidebar")
    expect(sidebar).not_to_contain_text("Earning rules")
    expect(page.locator("form.search")).to_have_count(0)  # Finance does not look members up
