"""Campaign jobs: thin wrappers around the services, each safe to run twice or at the same time.

Retries on database errors come from the project's base task (loyalty_site.celery).
"""

from celery import shared_task

from campaigns import services
from campaigns.tiers import tiers_recalculate


@shared_task(name="campaigns.birthdays_reward", ignore_result=True)
def birthdays_reward() -> int:
    # Safe to run twice a day: each member's birthday event is unique per year.
    return services.birthdays_reward()


@shared_task(name="campaigns.tiers_recalculate")
def tiers_recalculate_task() -> dict:
    """Nightly: safe to run twice or concurrently (see campaigns.tiers)."""
    return tiers_recalculate()


@shared_task(name="campaigns.campaigns_advance", ignore_result=True)
def campaigns_advance() -> dict:
    """Every minute: start and end campaigns on time; safe to run twice or concurrently."""
    return services.campaigns_advance()
