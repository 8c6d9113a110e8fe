"""Every write to members, cards, consents and a member's tier, one module per concept.

Staff changes (an ``actor`` is given) are recorded in the audit log with who, when, what and
why; channel changes are recorded on the rows themselves (channel, time).
"""

from members.services.audit import audit_record
from members.services.cards import card_block, card_issue, card_replace
from members.services.consents import consent_grant, consent_withdraw
from members.services.members import (
    UPDATABLE_FIELDS,
    member_enrol,
    member_scrub,
    member_update,
)
from members.services.tiers import member_tier_set, tier_changes_record

__all__ = [
    "UPDATABLE_FIELDS",
    "audit_record",
    "card_block",
    "card_issue",
    "card_replace",
    "consent_grant",
    "consent_withdraw",
    "member_enrol",
    "member_scrub",
    "member_tier_set",
    "member_update",
    "tier_changes_record",
]
