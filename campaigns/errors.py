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


class ScoreRequired(DomainError):
    code = "score_required"
    default_detail = _("This kind of event needs an NPS score from 0 to 10.")


class ScoreNotCollected(DomainError):
    code = "score_not_collected"
    default_detail = _("This kind of event does not collect an NPS score.")


class InvalidScore(DomainError):
    code = "invalid_score"
    default_detail = _("An NPS score is a whole number from 0 to 10.")


class CampaignNotSendable(Conflict):
    code = "campaign_not_sendable"
    default_detail = _("Only an active campaign with a frozen audience sends its messages.")


class MessageTemplateMissing(DomainError):
    code = "message_template_missing"
    default_detail = _("The campaign has no message template for this channel.")
