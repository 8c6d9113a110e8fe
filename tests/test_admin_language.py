"""The admin in Dutch (issue 12, item 19): a language switch on every admin page, translated app
headings (third-party apps too), and titles, breadcrumbs and add buttons that start with a capital
in both languages."""

import re

import pytest
from django.conf import settings

from members.services import member_enrol

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/members/member/"


@pytest.fixture
def admin_client(client, staff_user):
    client.force_login(staff_user("Administrator", is_superuser=True))
    return client


def headings(html: str) -> list[str]:
    return re.findall(r"<caption>\s*<a[^>]*>([^<]+)</a>", html)


def heading_of(html: str) -> tuple[str, str]:
    # <title>[object | ]page title | site title</title>
    [title] = re.findall(r"<title>([^<]+)</title>", html)
    title = title.split(" | ")[-2]
    [h1] = re.findall(r"<h1>([^<]+)</h1>", html)
    return title.strip(), h1.strip()


@pytest.mark.parametrize("language", ["en", "nl"])
def test_the_language_switch_is_on_an_admin_change_list(admin_client, language):
    response = admin_client.get(CHANGELIST, HTTP_ACCEPT_LANGUAGE=language)
    html = response.content.decode()
    [switch] = re.findall(r'<form action="/i18n/setlang/".*?</form>', html, re.S)
    assert f'name="next" type="hidden" value="{CHANGELIST}"' in switch
    assert re.search(rf'<option value="{language}" selected>', switch)
    assert "/static/js/language.js" in html


def test_switching_to_dutch_from_the_admin_keeps_the_page_and_speaks_dutch(admin_client):
    response = admin_client.post("/i18n/setlang/", {"language": "nl", "next": CHANGELIST})
    assert response.status_code == 302 and response["Location"] == CHANGELIST
    assert admin_client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "nl"
    html = admin_client.get(CHANGELIST).content.decode()
    assert '<html lang="nl"' in html
    assert '<option value="nl" selected>' in html


def test_app_headings_are_dutch_under_nl(admin_client):
    html = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    found = headings(html)
    for dutch in (
        "Leden",
        "Puntenadministratie",
        "Beloningen",
        "Campagnes",
        "Geplande taken",
        "Kanalen en webhooks",
        "Inlogpogingen",
        "API-sleutels zonder kanaal",
    ):
        assert dutch in found
    # The packages' own English headings are gone.
    for english in ("API Key Permissions", "Axes", "Periodic Tasks", "Members", "Ledger"):
        assert english not in found


def test_app_headings_in_english(admin_client):
    found = headings(admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode())
    for name in (
        "Members",
        "Ledger",
        "Rewards",
        "Campaigns",
        "Channels and webhooks",
        "Scheduled jobs",
        "Login attempts",
        "API keys without a channel",
    ):
        assert name in found


@pytest.mark.parametrize(
    ("language", "change", "add"),
    [("en", "Change member", "Add member"), ("nl", "Lid wijzigen", "Lid toevoegen")],
)
def test_change_form_titles_start_with_a_capital(admin_client, language, change, add):
    member = member_enrol(email="titel@example.nl")
    page = admin_client.get(f"{CHANGELIST}{member.pk}/change/", HTTP_ACCEPT_LANGUAGE=language)
    assert heading_of(page.content.decode()) == (change, change)
    page = admin_client.get(f"{CHANGELIST}add/", HTTP_ACCEPT_LANGUAGE=language)
    assert heading_of(page.content.decode()) == (add, add)


def test_the_two_box_picker_speaks_dutch(admin_client):
    # Django 5 reworded the picker's help and buttons and ships no Dutch for them yet; ours does.
    script = admin_client.get("/admin/jsi18n/", HTTP_ACCEPT_LANGUAGE="nl").content.decode()
    assert "Kies %s door ze te selecteren" in script
    assert '"Choose all %s": "Alle %s kiezen"' in script


def breadcrumbs_of(html: str) -> list[str]:
    [trail] = re.findall(r'<div class="breadcrumbs">(.*?)</div>', html, re.S)
    return [re.sub(r"<[^>]+>", "", part).strip() for part in trail.split("&rsaquo;")]


@pytest.mark.parametrize(
    ("language", "home", "members", "add"),
    [("en", "Home", "Members", "Add member"), ("nl", "Start", "Leden", "Lid toevoegen")],
)
def test_breadcrumbs_and_the_add_button_start_with_a_capital(
    admin_client, language, home, members, add
):
    member = member_enrol(email="kruimel@example.nl")
    page = admin_client.get(f"{CHANGELIST}add/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    assert breadcrumbs_of(page) == [home, members, members, add]
    page = admin_client.get(
        f"{CHANGELIST}{member.pk}/change/", HTTP_ACCEPT_LANGUAGE=language
    ).content.decode()
    assert breadcrumbs_of(page) == [home, members, members, str(member)]
    page = admin_client.get(CHANGELIST, HTTP_ACCEPT_LANGUAGE=language).content.decode()
    [button] = re.findall(r'class="addlink">\s*([^<]+?)\s*</a>', page)
    assert button == add
