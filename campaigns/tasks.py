"""Campaign jobs: thin wrappers around the services, each safe to run twice or at the same time.

Each job is a coordinator that lists what is due as of one moment and sends chunk tasks with it
(``members.jobs``); the coordinators return how many chunks they sent. Retries on database
errors, deadlocks included, come from the project's base task (loyalty_site.celery).
"""

from datetime import date

from celery import shared_task
from django.utils import timezone

from campaigns import selectors, services
from campaigns.models import Campaign
from campaigns.tiers import tier_candidates, tiers_recalculate
from members.jobs import chunks_send, moment_parse


@shared_task(name="campaigns.birthdays_reward", ignore_result=True)
def birthdays_reward() -> int:
    on = timezone.localdate()
    return chunks_send(birthdays_reward_chunk, selectors.birthdays_due(on=on), at=on)


@shared_task(name="campaigns.birthdays_reward_chunk", ignore_result=True)
def birthdays_reward_chunk(member_ids: list[int], on: str) -> int:
    # Safe to run twice a day: each member's birthday event is unique per year.
    return services.birthdays_reward(on=date.fromisoformat(on), member_ids=member_ids)


@shared_task(name="campaigns.tiers_recalculate")
def tiers_recalculate_task() -> int:
    """Nightly: every member's tier as of one moment, in chunks of the members whose tier may
    change (one read); each chunk recomputes its members and moves them under their locks."""
    now = timezone.now()
    return chunks_send(tiers_recalculate_chunk, tier_candidates(now=now), at=now)


@shared_task(name="campaigns.tiers_recalculate_chunk")
def tiers_recalculate_chunk(member_ids: list[int], now: str) -> dict:
    """Safe to run twice or concurrently (see campaigns.tiers)."""
    return tiers_recalculate(now=moment_parse(now), member_ids=member_ids)


# --- Campaign messages (campaigns.services.sends) ---
# A send is planned once (campaign_send), then handed out in chunks of message ids, each its
# own short task, so a lost worker costs one chunk: the broker delivers it again (acks_late)
# and its messages are claimed again or skipped (see the services). Failed messages due for a
# retry and messages whose worker was lost (an expired lease) are picked up by messages_retry.


@shared_task(name="campaigns.campaign_send", ignore_result=True)
def campaign_send(campaign_id: int) -> int:
    """Plan an active campaign's messages; the chunks follow after commit. Safe to run twice."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    return services.campaign_send_start(campaign=campaign)


@shared_task(name="campaigns.messages_fan_out", ignore_result=True)
def messages_fan_out(campaign_id: int) -> int:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    # Read a page at a time: the ids of a million messages are never all in memory.
    return chunks_send(messages_send_chunk, services.messages_due_ids(campaign=campaign))


@shared_task(name="campaigns.messages_send_chunk", ignore_result=True)
def messages_send_chunk(message_ids: list[int], now: str | None = None) -> dict:
    return dict(services.messages_send(message_ids=message_ids).outcomes)


@shared_task(name="campaigns.messages_retry", ignore_result=True)
def messages_retry() -> int:
    """Every few minutes: failed messages due again and those whose worker was lost."""
    return chunks_send(messages_send_chunk, services.messages_due(retries_only=True))


@shared_task(name="campaigns.campaigns_advance", ignore_result=True)
def campaigns_advance() -> dict:
    """Every minute: start and end campaigns on time; safe to run twice or concurrently."""
    return services.campaigns_advance()


@shared_task(name="campaigns.results_refresh", ignore_result=True)
def results_refresh(campaign_id: int | None = None) -> int:
    """Daily without an id: one task per campaign whose results may still change (running, or
    ended within its follow-up window), so a lost worker costs one campaign. With an id (the
    admin's "Refresh"): that campaign. Safe to run twice: a refresh replaces the rows it wrote.
    Returns how many campaigns were refreshed or sent."""
    if campaign_id is None:
        due = services.campaigns_results_due()
        for pk in due:
            results_refresh.delay(pk)
        return len(due)
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return 0
    services.campaign_results_refresh(campaign=campaign)
    return 1


@shared_task(name="campaigns.rfm_scores_refresh", ignore_result=True)
def rfm_scores_refresh() -> int:
    """Nightly: the RFM scores the day's segment counts read (campaigns.segments.rfm). One
    statement over every member; safe to run twice (the second replaces the first)."""
    return services.rfm_scores_refresh()
