"""The programme's rules (earning, abuse: `rules`) and engagement (`engagement`), as data
marketing edits in the admin; `campaigns.services` applies them."""

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

__all__ = [
    "AbuseRule",
    "Badge",
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
]
