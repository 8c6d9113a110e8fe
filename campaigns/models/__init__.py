"""The programme's rules (earning, abuse: `rules`), engagement (`engagement`), segments
(`segments`), campaigns (`campaigns`) with their messages (`messages`) and offers
(`offers`), as data marketing edits; `campaigns.services` applies them and writes the
campaigns' results (`results`)."""

from campaigns.models.budgets import CampaignMemberUsage
from campaigns.models.campaigns import Campaign, CampaignTransition
from campaigns.models.engagement import (
    Badge,
    Challenge,
    ChallengeProgress,
    EngagementEvent,
    EngagementKind,
    MemberBadge,
    Referral,
    ReferralCode,
)
from campaigns.models.messages import CampaignMessage, Channel, FrequencyCap, MessageTemplate
from campaigns.models.offers import CampaignOffer
from campaigns.models.results import CampaignResult
from campaigns.models.rules import (
    AbuseRule,
    EarningAward,
    EarningRule,
    JSONTypeOf,
    Period,
    PurchasePoints,
    PurchaseReview,
)
from campaigns.models.segments import (
    RfmScore,
    RfmScoring,
    Segment,
    SegmentSnapshot,
    SegmentSnapshotMember,
)

__all__ = [
    "AbuseRule",
    "Badge",
    "Campaign",
    "CampaignOffer",
    "CampaignResult",
    "CampaignMessage",
    "CampaignMemberUsage",
    "CampaignTransition",
    "Challenge",
    "Channel",
    "ChallengeProgress",
    "EarningAward",
    "EarningRule",
    "EngagementEvent",
    "EngagementKind",
    "FrequencyCap",
    "JSONTypeOf",
    "MemberBadge",
    "MessageTemplate",
    "Period",
    "PurchasePoints",
    "PurchaseReview",
    "Referral",
    "ReferralCode",
    "RfmScore",
    "RfmScoring",
    "Segment",
    "SegmentSnapshot",
    "SegmentSnapshotMember",
]
