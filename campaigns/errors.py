"""The campaigns app's refusals, each with its stable code (see loyalty_site.errors)."""

from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import Conflict, DomainError


class EngagementLimitReached(Conflict):
    code = "engagement_limit_reached"
    default_detail = _("The member reached the limit for this kind of event.")


class DuplicateEvent(Conflict):
    code = "duplicate_event"
    default_detail = _("This event was already recorded.")


class NotPending(Conflict):
    code = "not_pending"
    default_detail = _("This item was already decided.")


class InvalidReferral(DomainError):
    code = "invalid_referral"
    default_detail = _("This referral code is unknown or cannot be used by this member.")


class CampaignTransitionInvalid(Conflict):
    code = "campaign_transition_invalid"
    default_detail = _("This campaign cannot make this status change now.")


class CampaignNotReady(DomainError):
    code = "campaign_not_ready"
    default_detail = _("This campaign is not ready to be scheduled; see the fields.")


class CampaignNotEditable(Conflict):
    code = "campaign_not_editable"
    default_detail = _("This campaign can no longer be changed this way.")
