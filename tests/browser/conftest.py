"""End-to-end tests in Debian's Chromium (headless), driven by Playwright against a live server.

`make test` installs the system `chromium`; Playwright never downloads a browser of its own.
Each test gets a fresh browser context (cookies, language) on the worker's live server, whose
database is the test's (transactional: the server thread sees what the test wrote).

Playwright's synchronous API keeps an event loop in the test's thread, which Django would take
for async code and refuse the database from; DJANGO_ALLOW_ASYNC_UNSAFE tells it that the calls
are synchronous (they are: Playwright waits for the browser, Django runs in the server thread).
It stays set for the rest of the worker's session (the loop does too); a test that starts
`manage.py` in a subprocess leaves it out of the child's environment (tests/test_settings.py).
"""

import os
import shutil

import pytest
from django.test import Client

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# The flags that keep a headless Chromium quiet on a machine without a network or a sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "browser-test-password"


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser/" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"No Chromium at {CHROMIUM}: `make test` installs Debian's chromium package.")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-GB"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def sign_in(page, live_server, staff_user):
    """sign_in("Customer service", language="nl") -> the user, signed in in `page`'s browser."""

    def sign_in_as(role: str, *, language: str = "en", **kwargs):
        user = staff_user(role, **kwargs)
        user.set_password(PASSWORD)
        user.save()
        client = Client()
        client.force_login(user)
        session = client.cookies["sessionid"].value
        cookies = [{"name": "sessionid", "value": session, "url": live_server.url}]
        if language != "en":
            cookies.append({"name": "django_language", "value": language, "url": live_server.url})
        page.context.add_cookies(cookies)
        return user

    return sign_in_as
