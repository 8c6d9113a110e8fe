"""The programme's rules (earning, abuse: `rules`), engagement (`engagement`), segments
(`segments`) and campaigns (`campaigns`), as data marketing edits; `campaigns.services` applies
them."""

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
from campaigns.models.rules import (
    AbuseRule,
    EarningAward,
    EarningRule,
    JSONTypeOf,
    Period,
    PurchasePoints,
    PurchaseReview,
)
from campaigns.models.segments import Segment, SegmentSnapshot, SegmentSnapshotMember

__all__ = [
    "AbuseRule",
    "Badge",
    "Campaign",
    "CampaignMemberUsage",
    "CampaignTransition",
    "Challenge",
    "ChallengeProgress",
    "EarningAward",
    "EarningRule",
    "EngagementEvent",
    "EngagementKind",
    "JSONTypeOf",
    "MemberBadge",
    "Period",
    "PurchasePoints",
    "PurchaseReview",
    "Referral",
    "ReferralCode",
    "Segment",
    "SegmentSnapshot",
    "SegmentSnapshotMember",
]
