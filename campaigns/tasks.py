"""Campaign jobs: thin wrappers around the services, each safe to run twice or at the same time.

Retries on database errors come from the project's base task (loyalty_site.celery).
"""

from celery import shared_task

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
