import json

import pytest
from django.db.models import Sum

from ledger.models import Entry
from ledger.selectors import balance_summary
from ledger.services import points_earn, points_redeem
from loyalty_site.privacy import RedemptionReserved, member_erase, member_export
from members.errors import CardBlocked, MemberErased, ReasonRequired
from members.models import AuditEntry, Card, Member
from members.selectors import card_active_member, consents_current
from members.services import card_replace, member_enrol, member_tier_set
from tests.factories import UserFactory
from tests.members.factories import ladder

pytestmark = pytest.mark.django_db

PII = ["Anna", "de Vries", "anna@example.nl", "+31612345678", "1984-03-12", "LEG-7"]


@pytest.fixture
def member():
    from datetime import date

    member = member_enrol(
        email="Anna@Example.nl",
        first_name="Anna",
        last_name="de Vries",
        phone="0612345678",
        birth_date=date(1984, 3, 12),
        external_id="LEG-7",
        locale="nl",
        profile={"favourite_store": "Utrecht"},
        consents=["marketing_email", "sms"],
        channel="pos",
    )
    points_earn(member=member, points=800, channel="pos", reference="till-1")
    points_redeem(member=member, points=300, channel="webshop")
    return member


def test_export_holds_profile_cards_consents_tiers_and_ledger(member):
    _bronze, silver, _gold = ladder()
    member_tier_set(member=member, tier=silver, reason="qualified")
    card_replace(card=member.cards.get())
    staff = UserFactory()
    document = member_export(member=member, actor=staff)
    json.dumps(document)  # one JSON document
    profile = document["member"]
    assert profile["email"] == "anna@example.nl"
    assert profile["phone"] == "+31612345678"
    assert profile["birth_date"] == "1984-03-12"
    assert profile["profile"] == {"favourite_store": "Utrecht"}
    assert profile["tier"] == "Silver"
    assert sorted(card["status"] for card in document["cards"]) == ["active", "replaced"]
    assert document["consents"]["current"]["sms"]["granted"] is True
    assert [c["purpose"] for c in document["consents"]["history"]] == ["marketing_email", "sms"]
    assert document["tier_history"][0]["to"] == "Silver"
    assert document["points"]["account"]["balance"] == 500
    assert sorted(e["points"] for e in document["points"]["entries"]) == [-300, 800]
    assert "rewards.Redemption" in document["other"]
    assert AuditEntry.objects.filter(action="member_export", actor=staff, member=member).exists()


def test_erase_removes_personal_data_and_keeps_the_ledger(member):
    staff = UserFactory()
    entries_before = list(
        Entry.objects.filter(account__member=member).values_list("id", "amount", "balance_after")
    )
    total_before = Entry.objects.aggregate(total=Sum("amount"))["total"]
    card_number = member.cards.get().number

    member_erase(member=member, actor=staff, reason="request by e-mail, 2026-11-27")

    member.refresh_from_db()
    assert member.status == Member.Status.ERASED
    stored = json.dumps(
        {k: str(v) for k, v in Member.objects.filter(pk=member.pk).values().get().items()}
    )
    for value in PII:
        assert value.lower() not in stored.lower()
    assert member.profile == {}
    assert not any(state["granted"] for state in consents_current(member=member).values())
    assert set(Card.objects.filter(member=member).values_list("status", flat=True)) == {"blocked"}
    with pytest.raises(CardBlocked) as caught:
        card_active_member(card_number)
    assert caught.value.code == "card_blocked"
    # The ledger stays, untouched and still balanced.
    assert (
        list(
            Entry.objects.filter(account__member=member).values_list(
                "id", "amount", "balance_after"
            )
        )
        == entries_before
    )
    assert Entry.objects.aggregate(total=Sum("amount"))["total"] == total_before
    assert balance_summary(member=member)["balance"] == 500
    audit = AuditEntry.objects.get(action="member_erase")
    assert (audit.actor, audit.member, audit.reason) == (
        staff,
        member,
        "request by e-mail, 2026-11-27",
    )
    # The export of an erased member holds no personal data either.
    exported = json.dumps(member_export(member=member))
    for value in PII:
        assert value.lower() not in exported.lower()


def test_erase_needs_a_reason_and_happens_once(member):
    staff = UserFactory()
    with pytest.raises(ReasonRequired) as caught:
        member_erase(member=member, actor=staff, reason=" ")
    assert (caught.value.code, caught.value.fields) == (
        "reason_required",
        {"reason": "Give a reason."},
    )
    member.refresh_from_db()
    assert member.status == Member.Status.ACTIVE
    member_erase(member=member, actor=staff, reason="request")
    with pytest.raises(MemberErased) as caught:
        member_erase(member=member, actor=staff, reason="request")
    assert caught.value.code == "member_erased"
    assert AuditEntry.objects.filter(action="member_erase").count() == 1


def test_erase_is_refused_while_a_redemption_is_reserved(member):
    from rewards.services import redemption_cancel, redemption_reserve

    redemption = redemption_reserve(member=member, points=100, channel="pos")
    with pytest.raises(RedemptionReserved) as caught:
        member_erase(member=member, actor=UserFactory(), reason="request")
    assert caught.value.code == "redemption_reserved"
    member.refresh_from_db()
    assert member.email == "anna@example.nl" and member.status == "active"
    redemption_cancel(redemption=redemption)
    member_erase(member=member, actor=UserFactory(), reason="request")
    member.refresh_from_db()
    assert member.status == "erased"


def test_erase_removes_the_copies_other_apps_keep(member):
    from ledger.models import IdempotencyRecord
    from rewards.models import Redemption
    from rewards.services import redemption_redeem
    from tests.rewards.factories import ProductRewardFactory

    redemption = redemption_redeem(
        member=member,
        reward=ProductRewardFactory(points=100),
        shipping_address="Anna de Vries, Keizersgracht 1, Amsterdam",
    )
    assert "Keizersgracht" in Redemption.objects.get(pk=redemption.pk).shipping_address
    answer = {"id": str(member.public_id), "email": "anna@example.nl", "first_name": "Anna"}
    IdempotencyRecord.objects.create(
        channel="app", key="enrol-anna", fingerprint="f", response_status=201, response_body=answer
    )
    other = {"id": "someone-else", "email": "piet@example.nl"}
    IdempotencyRecord.objects.create(
        channel="app", key="enrol-piet", fingerprint="f", response_status=201, response_body=other
    )

    member_erase(member=member, actor=UserFactory(), reason="request")

    assert Redemption.objects.get(pk=redemption.pk).shipping_address == ""
    stored = IdempotencyRecord.objects.get(key="enrol-anna").response_body
    assert stored["email"] == "" and stored["first_name"] == ""
    assert stored["id"] == str(member.public_id)
    assert IdempotencyRecord.objects.get(key="enrol-piet").response_body == other
