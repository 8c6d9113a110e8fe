"""The staff audit log: who changed what about a member, when and why."""

from django.utils.translation import gettext_lazy as _

from members.models import (
    AuditEntry,
    Member,
)

# Every action code written to the audit log, with its label for staff (the member page's audit
# trail and the audit log page both read it). A service that records a new action adds it here:
# `audit_record` refuses a code that is not in it.
AUDIT_ACTIONS = {
    "member_enrol": _("Member enrolled"),
    "member_update": _("Member profile changed"),
    "member_export": _("Member's data exported"),
    "member_erase": _("Member erased"),
    "member_scrub": _("Member's personal fields scrubbed"),
    "member_tier_set": _("Tier changed"),
    "card_issue": _("Card issued"),
    "card_block": _("Card blocked"),
    "card_replace": _("Card replaced"),
    "consent_grant": _("Consent given"),
    "consent_withdraw": _("Consent withdrawn"),
    "points_adjust": _("Points adjusted"),
    "adjustment_approve": _("Adjustment approved"),
    "adjustment_reject": _("Adjustment rejected"),
    "purchase_review_approve": _("Held purchase approved"),
    "purchase_review_reject": _("Held purchase rejected"),
    "event_approve": _("Engagement event approved"),
    "event_reject": _("Engagement event rejected"),
    "earning_rule_create": _("Earning rule created"),
    "earning_rule_change": _("Earning rule changed"),
    "earning_rule_delete": _("Earning rule deleted"),
    "reward_create": _("Reward created"),
    "reward_change": _("Reward changed"),
    "engagement_kind_create": _("Engagement kind created"),
    "engagement_kind_change": _("Engagement kind changed"),
    "challenge_create": _("Challenge created"),
    "challenge_change": _("Challenge changed"),
    "badge_create": _("Badge created"),
    "badge_change": _("Badge changed"),
    "segment_create": _("Segment created"),
    "segment_update": _("Segment changed"),
    "campaign_create": _("Campaign created"),
    "message_template_create": _("Message template added"),
    "message_template_update": _("Message template changed"),
    "message_template_delete": _("Message template deleted"),
    "campaign_offer_create": _("Campaign offer added"),
    "campaign_offer_delete": _("Campaign offer removed"),
    "voucher_resend": _("Voucher sent again"),
    "redemption_cancel": _("Reservation cancelled"),
    "fulfilment_set": _("Shipping status changed"),
    "members_export": _("Members exported"),
    "shipping_export": _("Shipping list exported"),
    "audit_export": _("Audit log exported"),
}


def audit_action_label(code: str) -> str:
    return str(AUDIT_ACTIONS.get(code, code))


def audit_record(
    *,
    actor,
    action: str,
    member: Member | None = None,
    reason: str = "",
    details: dict | None = None,
) -> AuditEntry:
    """One line of the staff audit log. ``details`` must hold no personal values."""
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"audit action {action!r} has no label in AUDIT_ACTIONS")
    return AuditEntry.objects.create(
        actor=actor, action=action, member=member, reason=reason, details=details or {}
    )
