"""Campaign jobs: thin wrappers around the services, each safe to run twice or at the same time.

Each job is a coordinator that lists what is due as of one moment and sends chunk tasks with it
(``members.jobs``); the coordinators return how many chunks they sent. Retries on database
errors, deadlocks included, come from the project's base task (loyalty_site.celery).
"""

from datetime import date

from celery import shared_task
from django.utils import timezone

from campaigns import selectors, services
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
