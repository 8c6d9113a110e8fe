"""Every write of the campaigns app, one module per concept.

`purchases` (a purchase from any channel, the use case behind `POST purchases/`), `returns`,
`reviews` (the abuse guard's queue), `abuse` (the guard itself), `engagement` (events and
birthdays), `referrals`, `challenges` (and badges), `segments` (saving, snapshots, RFM presets),
`sends` (campaign messages: planning, claiming, sending, recording), `lifecycle` (campaign status
changes and the scheduler), `drafts` (a new campaign, a draft's templates and offers),
`budgets` (campaign budget caps on the purchase path), `results` (campaign results against the
control group), `rules` (an earning rule saved from its editor), `vouchers` (a voucher code
sent to its member again); `locks` finds and locks the member, first in the lock order every
module keeps. Callers import the use cases from here.
"""

from campaigns.services.challenges import (
    badge_award,
    badge_save,
    challenge_problems,
    challenge_save,
    challenges_advance,
)
from campaigns.services.drafts import (
    campaign_create,
    campaign_offer_add,
    campaign_offer_delete,
    message_template_delete,
    message_template_save,
)
from campaigns.services.engagement import (
    birthdays_reward,
    engagement_kind_save,
    event_approve,
    event_record,
    event_reject,
)
from campaigns.services.lifecycle import (
    campaign_activate,
    campaign_archive,
    campaign_end,
    campaign_pause,
    campaign_resume,
    campaign_schedule,
    campaign_schedule_problems,
    campaign_unschedule,
    campaign_update,
    campaigns_advance,
)
from campaigns.services.purchases import PurchaseResult, purchase_record
from campaigns.services.referrals import (
    member_enrol_referred,
    referral_code_for,
    referral_register,
    referral_reward,
)
from campaigns.services.results import campaign_results_refresh, campaigns_results_due
from campaigns.services.returns import ReturnResult, return_record
from campaigns.services.reviews import purchase_review_approve, purchase_review_reject
from campaigns.services.rules import rule_delete, rule_editable, rule_save
from campaigns.services.segments import (
    rfm_scores_refresh,
    segment_presets_ensure,
    segment_save,
    segment_snapshot_take,
)
from campaigns.services.sends import (
    SendResult,
    campaign_send_start,
    messages_due,
    messages_due_ids,
    messages_progress,
    messages_send,
)
from campaigns.services.vouchers import voucher_resend

__all__ = [
    "PurchaseResult",
    "ReturnResult",
    "SendResult",
    "badge_award",
    "badge_save",
    "campaign_activate",
    "campaign_archive",
    "campaign_create",
    "campaign_end",
    "campaign_offer_add",
    "campaign_offer_delete",
    "campaign_pause",
    "campaign_resume",
    "campaign_schedule",
    "campaign_schedule_problems",
    "campaign_unschedule",
    "campaign_update",
    "campaigns_advance",
    "birthdays_reward",
    "campaign_results_refresh",
    "campaigns_results_due",
    "campaign_send_start",
    "challenge_problems",
    "challenge_save",
    "challenges_advance",
    "engagement_kind_save",
    "event_approve",
    "event_record",
    "event_reject",
    "member_enrol_referred",
    "message_template_delete",
    "message_template_save",
    "messages_due",
    "messages_due_ids",
    "messages_progress",
    "messages_send",
    "purchase_record",
    "purchase_review_approve",
    "purchase_review_reject",
    "referral_code_for",
    "referral_register",
    "referral_reward",
    "return_record",
    "rule_delete",
    "rule_editable",
    "rule_save",
    "rfm_scores_refresh",
    "segment_presets_ensure",
    "segment_save",
    "voucher_resend",
    "segment_snapshot_take",
]
