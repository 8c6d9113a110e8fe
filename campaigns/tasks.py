"""Campaign jobs: thin wrappers around the services, each safe to run twice or at the same time.

Retries on database errors come from the project's base task (loyalty_site.celery).
"""

from celery import shared_task
from django.conf import settings

from campaigns import services
from campaigns.models import Campaign
from campaigns.tiers import tiers_recalculate


@shared_task(name="campaigns.birthdays_reward", ignore_result=True)
def birthdays_reward() -> int:
    # Safe to run twice a day: each member's birthday event is unique per year.
    return services.birthdays_reward()


@shared_task(name="campaigns.tiers_recalculate")
def tiers_recalculate_task() -> dict:
    """Nightly: safe to run twice or concurrently (see campaigns.tiers)."""
    return tiers_recalculate()


# --- Campaign messages (campaigns.services.sends) ---
# A send is planned once (campaign_send), then handed out in chunks of message ids, each its
# own short task, so a lost worker costs one chunk: the broker delivers it again (acks_late)
# and its messages are claimed again or skipped (see the services). Failed messages due for a
# retry and messages whose worker was lost (an expired lease) are picked up by messages_retry.


def _chunks_send(chunk_task, ids: list[int]) -> int:
    """One `chunk_task.delay(chunk_ids, None)` per LOYALTY_JOB_CHUNK_SIZE ids; how many were
    sent. The shape of the project's shared fan-out (members.jobs.chunks_send, being written on
    another branch), so that this can switch to it at merge."""
    size = settings.LOYALTY_JOB_CHUNK_SIZE
    for start in range(0, len(ids), size):
        chunk_task.delay(ids[start : start + size], None)
    return -(-len(ids) // size)


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
    return _chunks_send(messages_send_chunk, services.messages_due(campaign=campaign))


@shared_task(name="campaigns.messages_send_chunk", ignore_result=True)
def messages_send_chunk(message_ids: list[int], now: str | None = None) -> dict:
    return dict(services.messages_send(message_ids=message_ids).outcomes)


@shared_task(name="campaigns.messages_retry", ignore_result=True)
def messages_retry() -> int:
    """Every few minutes: failed messages due again and those whose worker was lost."""
    return _chunks_send(messages_send_chunk, services.messages_due(retries_only=True))
