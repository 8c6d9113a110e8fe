"""The admin of loyalty_site: the member actions composed across every app (export, erasure,
import), registered on top of members' own member admin."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from ledger.models import Entry
from members.models import AuditEntry, Member
from members.services import member_enrol

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/members/member/"


@pytest.fixture
def service(client, staff_user):
    user = staff_user("Customer service")
    client.force_login(user)
    return user


@pytest.fixture
def anna():
    return member_enrol(
        email="anna.devries@example.nl",
        first_name="Anna",
        last_name="de Vries",
        phone="0612345678",
        external_id="LEG-42",
    )


def test_export_action_downloads_json(client, service, anna):
    response = client.post(CHANGELIST, {"action": "export_selected", "_selected_action": [anna.pk]})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    document = json.loads(response.content)
    assert document["member"]["email"] == "anna.devries@example.nl"
    assert AuditEntry.objects.filter(action="member_export", actor=service).exists()


def test_erase_action_asks_for_confirmation_and_a_reason(client, service, anna):
    first = client.post(CHANGELIST, {"action": "erase_selected", "_selected_action": [anna.pk]})
    assert first.status_code == 200
    assert "reason" in first.content.decode()
    anna.refresh_from_db()
    assert anna.status == "active"

    no_reason = client.post(
        CHANGELIST,
        {"action": "erase_selected", "_selected_action": [anna.pk], "confirm": "1", "reason": ""},
    )
    assert no_reason.status_code == 200
    anna.refresh_from_db()
    assert anna.status == "active"

    done = client.post(
        CHANGELIST,
        {
            "action": "erase_selected",
            "_selected_action": [anna.pk],
            "confirm": "1",
            "reason": "written request",
        },
    )
    assert done.status_code == 302
    anna.refresh_from_db()
    assert anna.status == "erased" and anna.email == ""
    assert AuditEntry.objects.filter(action="member_erase", actor=service).exists()


def test_marketing_may_not_erase_or_export(client, staff_user, anna):
    client.force_login(staff_user("Marketing"))
    response = client.post(
        CHANGELIST,
        {"action": "erase_selected", "_selected_action": [anna.pk], "confirm": "1", "reason": "x"},
    )
    anna.refresh_from_db()
    assert anna.status == "active"
    assert response.status_code in (200, 302, 403)


def test_admin_import_dry_run_then_confirm(client, staff_user):
    admin_user = staff_user("Administrator")
    client.force_login(admin_user)
    csv = (
        "external_id,email,first_name,last_name,phone,birth_date,locale,card_number,opening_balance\n"
        "A1,a1@example.nl,Ann,Eén,,,,,15\n"
    ).encode()
    response = client.post(
        "/admin/members/member/import/",
        {
            "resource": "0",
            "format": "0",
            "import_file": SimpleUploadedFile("legacy.csv", csv, content_type="text/csv"),
        },
    )
    assert response.status_code == 200
    assert Member.objects.count() == 0  # the dry run wrote nothing
    confirm = response.context["confirm_form"]
    assert confirm is not None
    response = client.post("/admin/members/member/process_import/", {**confirm.initial})
    assert response.status_code == 302
    member = Member.objects.get(external_id="A1")
    entry = Entry.objects.get(account__member=member)
    assert entry.reason == "import: legacy.csv" and entry.actor == admin_user


def test_admin_import_shows_row_errors(client, staff_user):
    client.force_login(staff_user("Administrator"))
    csv = (
        "external_id,email,first_name,last_name,phone,birth_date,locale,card_number,opening_balance\n"
        "A1,broken,Ann,Eén,,,,,15\n"
    ).encode()
    response = client.post(
        "/admin/members/member/import/",
        {
            "resource": "0",
            "format": "0",
            "import_file": SimpleUploadedFile("legacy.csv", csv, content_type="text/csv"),
        },
    )
    assert response.status_code == 200
    assert response.context["result"].has_validation_errors()
    assert not response.context.get("confirm_form")
    assert Member.objects.count() == 0
