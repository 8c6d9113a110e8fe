"""The one tier service (members/services/tiers.py)."""

import pytest

from members.models import AuditEntry, TierHistory
from members.services import (
    member_enrol,
    member_tier_set,
)
from tests.factories import UserFactory
from tests.members.factories import ladder

pytestmark = pytest.mark.django_db


# --- e-mail and phone: normalised and unique ---


def test_member_tier_set_records_history_and_audits_staff():
    bronze, silver, _gold = ladder()
    staff = UserFactory()
    member = member_enrol(email="t@example.nl")
    member_tier_set(member=member, tier=silver, actor=staff, note="goodwill")
    assert member_tier_set(member=member, tier=silver, actor=staff, note="again") is None
    change = TierHistory.objects.get(member=member, reason="staff")
    assert (change.from_tier, change.to_tier, change.reason, change.actor) == (
        bronze,
        silver,
        "staff",
        staff,
    )
    member.refresh_from_db()
    assert member.tier == silver
    assert AuditEntry.objects.filter(action="member_tier_set", reason="goodwill").exists()
