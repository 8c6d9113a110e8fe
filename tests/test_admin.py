"""The admin of loyalty_site: the member actions composed across every app (export, erasure,
import), registered on top of members' own member admin."""

import json

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from ledger.models import Entry
from loyalty_site.privacy import member_erase
from members.models import AuditEntry, Member

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/members/member/"


def test_export_action_downloads_json(client, service, anna):
    response = client.post(CHANGELIST, {"action": "export_selected", "_selected_action": [anna.pk]})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="member-{anna.public_id}.json"'
    document = json.loads(response.content)
    assert document["member"]["id"] == str(anna.public_id)
    assert document["member"]["email"] == "anna.devries@example.nl"
    audit = AuditEntry.objects.get(action="member_export")
    assert (audit.actor, audit.member) == (service, anna)


def test_erase_action_asks_for_confirmation_and_a_reason(client, service, anna):
    first = client.post(CHANGELIST, {"action": "erase_selected", "_selected_action": [anna.pk]})
    assert first.status_code == 200
    assert [t.name for t in first.templates][0] == "members/erase_confirm.html"
    assert list(first.context["members"]) == [anna]
    assert not first.context["form"].is_bound and "reason" in first.context["form"].fields
    anna.refresh_from_db()
    assert anna.status == "active"

    no_reason = client.post(
        CHANGELIST,
        {"action": "erase_selected", "_selected_action": [anna.pk], "confirm": "1", "reason": ""},
    )
    assert no_reason.status_code == 200
    assert no_reason.context["form"].errors == {"reason": ["This field is required."]}
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
    assert [str(m) for m in get_messages(done.wsgi_request)] == ["1 member erased."]
    anna.refresh_from_db()
    assert anna.status == "erased" and anna.email == ""
    audit = AuditEntry.objects.get(action="member_erase")
    assert (audit.actor, audit.member, audit.reason) == (service, anna, "written request")


def test_erasing_an_erased_member_again_is_reported_not_a_500(client, service, anna):
    member_erase(member=anna, actor=service, reason="first request")
    response = client.post(
        CHANGELIST,
        {"action": "erase_selected", "_selected_action": [anna.pk], "confirm": "1", "reason": "x"},
    )
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"{anna.public_id}: This member's personal data has been erased."
    ]
    assert AuditEntry.objects.filter(action="member_erase").count() == 1


@pytest.mark.parametrize("action", ["erase_selected", "export_selected"])
def test_marketing_may_not_erase_or_export(client, staff_user, anna, action):
    client.force_login(staff_user("Marketing"))
    # Marketing sees the member list, but no action is offered to it.
    page = client.get(CHANGELIST)
    assert page.status_code == 200 and page.context["action_form"] is None
    response = client.post(
        CHANGELIST,
        {"action": action, "_selected_action": [anna.pk], "confirm": "1", "reason": "x"},
    )
    # With no action to run, the post only shows the list again.
    assert response.status_code == 200 and response.context["action_form"] is None
    assert list(get_messages(response.wsgi_request)) == []
    assert "Content-Disposition" not in response
    anna.refresh_from_db()
    assert anna.status == "active" and anna.email == "anna.devries@example.nl"
    assert not AuditEntry.objects.filter(action__in=["member_erase", "member_export"]).exists()


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
