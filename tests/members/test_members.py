"""Enrolment and updates (members/services/members.py)."""

import threading

import pytest
from django.db import connection

from members.errors import (
    EmailTaken,
    InvalidEmail,
    InvalidPhone,
    PhoneTaken,
)
from members.models import AuditEntry, Member
from members.services import (
    member_enrol,
    member_update,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


# --- e-mail and phone: normalised and unique ---


def test_email_is_stored_lower_case_and_stripped():
    member = member_enrol(email="  Anna.De.Vries@Example.NL ")
    assert member.email == "anna.de.vries@example.nl"
    member.refresh_from_db()
    assert member.email == "anna.de.vries@example.nl"


@pytest.mark.parametrize("other", ["ANNA@example.nl", " anna@EXAMPLE.nl", "Anna@Example.Nl"])
def test_email_is_unique_whatever_the_case(other):
    member_enrol(email="anna@example.nl")
    with pytest.raises(EmailTaken) as caught:
        member_enrol(email=other)
    assert caught.value.code == "email_taken"
    assert Member.objects.count() == 1


def test_database_refuses_a_second_email_differing_only_in_case():
    from django.db import IntegrityError, transaction

    Member.objects.create(email="a@example.nl")
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.create(email="A@EXAMPLE.NL")


def test_invalid_email_is_refused():
    with pytest.raises(InvalidEmail) as caught:
        member_enrol(email="not-an-address")
    assert caught.value.code == "invalid_email"
    assert not Member.objects.exists()


@pytest.mark.parametrize(
    "typed", ["06 1234 5678", "0612345678", "+31 6 12345678", "+31612345678", "0031612345678"]
)
def test_phone_formats_are_stored_in_e164(typed):
    member = member_enrol(email="p@example.nl", phone=typed)
    member.refresh_from_db()
    assert str(member.phone) == "+31612345678"


def test_phone_is_unique_across_formats():
    member_enrol(email="one@example.nl", phone="06-12345678")
    with pytest.raises(PhoneTaken) as caught:
        member_enrol(email="two@example.nl", phone="+31 6 1234 5678")
    assert caught.value.code == "phone_taken"
    assert list(Member.objects.values_list("email", flat=True)) == ["one@example.nl"]


def test_invalid_phone_is_refused():
    with pytest.raises(InvalidPhone) as caught:
        member_enrol(email="p@example.nl", phone="12")
    assert caught.value.code == "invalid_phone"
    assert not Member.objects.exists()


def test_members_without_phone_or_email_do_not_clash():
    member_enrol(email="", phone="")
    member_enrol(email="", phone="")
    assert Member.objects.count() == 2


def test_update_normalises_and_keeps_uniqueness():
    member_enrol(email="taken@example.nl")
    member = member_enrol(email="mine@example.nl")
    with pytest.raises(EmailTaken) as caught:
        member_update(member=member, email="TAKEN@example.nl")
    assert caught.value.code == "email_taken"
    member.refresh_from_db()
    assert member.email == "mine@example.nl"
    member = member_update(member=member, email=" New@Example.nl ", phone="0612345678")
    assert member.email == "new@example.nl"
    assert str(member.phone) == "+31612345678"


def test_staff_update_is_audited_without_personal_values():
    staff = UserFactory()
    member = member_enrol(email="mine@example.nl")
    member_update(member=member, actor=staff, reason="called in", last_name="Jansen")
    audit = AuditEntry.objects.get(action="member_update")
    assert (audit.actor, audit.member, audit.reason) == (staff, member, "called in")
    assert audit.details == {"fields": ["last_name"]}
    assert "Jansen" not in str(audit.details)


@pytest.mark.django_db(transaction=True)
def test_concurrent_enrolments_with_one_email_give_one_member_and_a_conflict():
    if connection.vendor != "postgresql":
        pytest.skip("real concurrency needs PostgreSQL")
    barrier = threading.Barrier(4)
    results = []

    def enrol(index):
        try:
            barrier.wait()
            member_enrol(email=f"Race@Example.nl{' ' * index}")
            results.append("ok")
        except EmailTaken:
            results.append("email_taken")
        finally:
            connection.close()

    threads = [threading.Thread(target=enrol, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["email_taken"] * 3 + ["ok"]
    assert Member.objects.filter(email="race@example.nl").count() == 1


# --- cards ---
