"""Campaign jobs: thin wrappers around the services, each safe to run twice or at the same time."""

from celery import shared_task
from django.db import OperationalError

from campaigns import services

# The nightly tier recalculation task lives with its service; importing it here lets Celery
# autodiscovery (which imports each app's tasks module) register it.
from campaigns.tiers import tiers_recalculate_task  # noqa: F401


@shared_task(
    name="campaigns.birthdays_reward",
    autoretry_for=(OperationalError,),
    retry_backoff=30,
    max_retries=3,
    ignore_result=True,
)
def birthdays_reward() -> int:
    # Safe to run twice a day: each member's birthday event is unique per year.
    return services.birthdays_reward()
