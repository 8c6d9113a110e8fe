"""Consents (members/services/consents.py)."""

import pytest

from loyalty_site.errors import DomainError
from members.models import Consent
from members.selectors import (
    consent_granted,
    consents_current,
    members_consenting,
)
from members.services import (
    consent_grant,
    consent_withdraw,
    member_enrol,
)

pytestmark = pytest.mark.django_db


# --- e-mail and phone: normalised and unique ---


def test_consent_history_is_kept_and_the_current_state_derived_from_it():
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(days=10)
    member = member_enrol(
        email="c@example.nl", consents=["marketing_email", "sms"], wording_version="v1"
    )
    consent_withdraw(member=member, purpose="sms", channel="app", at=start + timedelta(days=12))
    consent_grant(
        member=member,
        purpose="push",
        channel="webshop",
        wording_version="v2",
        at=start + timedelta(days=13),
    )
    history = list(
        Consent.objects.filter(member=member)
        .order_by("at", "id")
        .values_list("purpose", "action", "wording_version")
    )
    assert history == [
        ("marketing_email", "grant", "v1"),
        ("sms", "grant", "v1"),
        ("sms", "withdraw", "1"),
        ("push", "grant", "v2"),
    ]
    current = consents_current(member=member)
    assert {p: state["granted"] for p, state in current.items()} == {
        "marketing_email": True,
        "sms": False,
        "push": True,
        "profiling": False,
        "partner_sharing": False,
    }
    assert current["push"]["channel"] == "webshop"
    assert current["push"]["wording_version"] == "v2"
    assert consent_granted(member=member, purpose="marketing_email")
    assert list(members_consenting(purpose="sms")) == []
    assert list(members_consenting(purpose="push")) == [member]


def test_a_regrant_after_withdrawal_counts():
    member = member_enrol(email="c@example.nl")
    consent_grant(member=member, purpose="sms")
    consent_withdraw(member=member, purpose="sms")
    consent_grant(member=member, purpose="sms")
    assert consent_granted(member=member, purpose="sms")
    assert Consent.objects.filter(member=member).count() == 3


def test_unknown_purpose_is_refused():
    member = member_enrol(email="c@example.nl")
    # The service raises the base class itself, with the code; no subclass exists for it.
    with pytest.raises(DomainError) as caught:
        consent_grant(member=member, purpose="carrier_pigeon")
    assert type(caught.value) is DomainError
    assert (caught.value.code, caught.value.fields) == (
        "invalid_purpose",
        {"purpose": "unknown: carrier_pigeon"},
    )
    assert not Consent.objects.filter(member=member).exists()


# --- tier set ---
