"""The beat schedule, declared in code.

`manage.py setup_schedules` writes these into django-celery-beat's tables. An entry that exists
already is left as the operator set it (paused, moved) unless `--reset` is given. Times are UTC.
"""

from dataclasses import dataclass

from django.db import transaction


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    minute: str = "0"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    description: str = ""


SCHEDULES: list[Schedule] = [
    Schedule(
        name="Reward reservations expiry",
        task="rewards.reservations_expire",
        minute="*",
        description="Release reserved redemptions past LOYALTY_RESERVATION_MINUTES (rewards).",
    ),
    Schedule(
        name="Voucher codes expiry",
        task="rewards.voucher_codes_expire",
        minute="15",
        hour="1",
        description="Mark voucher codes past their expiry date expired (rewards).",
    ),
    Schedule(
        name="Tier recalculation",
        task="campaigns.tiers_recalculate",
        minute="30",
        hour="2",
        description="Recalculate every member's tier from qualifying points (campaigns.tiers).",
    ),
    Schedule(
        name="Points expiry",
        task="ledger.points_expire",
        minute="5",
        hour="1",
        description="Expire what is left of lots past their expiry date (ledger).",
    ),
    Schedule(
        name="Pending points maturation",
        task="ledger.points_mature",
        minute="*/15",
        description="Make pending points spendable once their date has come (ledger).",
    ),
    Schedule(
        name="Points holds time-out",
        task="ledger.holds_expire",
        minute="*",
        description="Release open holds past LOYALTY_HOLD_TIMEOUT_MINUTES (ledger).",
    ),
    Schedule(
        name="Ledger reconciliation",
        task="ledger.ledger_reconcile",
        minute="45",
        hour="3",
        description="Check every balance against its entries and lots; log mismatches (ledger).",
    ),
    Schedule(
        name="Birthday points",
        task="campaigns.birthdays_reward",
        minute="10",
        hour="5",
        description="Give the birthday engagement event's points to today's birthdays (campaigns).",
    ),
    Schedule(
        name="Campaign results",
        task="campaigns.results_refresh",
        minute="40",
        hour="4",
        description="Measure running and recently ended campaigns against their control groups.",
    ),
    Schedule(
        name="RFM scores",
        task="campaigns.rfm_scores_refresh",
        minute="5",
        hour="0",
        description="Score members on RFM for the day's segment counts (campaigns.segments.rfm).",
    ),
    Schedule(
        name="Campaign message retries",
        task="campaigns.messages_retry",
        minute="*/5",
        description="Send failed messages due again and those of a lost worker (campaigns).",
    ),
    Schedule(
        name="Campaign start and end",
        task="campaigns.campaigns_advance",
        minute="*",
        description="Start scheduled campaigns whose start has come, end those past their end.",
    ),
    Schedule(
        name="Background jobs purge",
        task="members.jobs_purge",
        minute="30",
        hour="4",
        description="Delete page jobs (simulations, exports) and their files older than "
        "LOYALTY_BACKGROUND_JOB_KEEP_DAYS.",
    ),
    Schedule(
        name="Dashboard figures",
        task="loyalty_site.dashboard_refresh",
        minute="7",
        description="Recompute the dashboard's rows of yesterday and today (loyalty_site).",
    ),
    Schedule(
        name="Dashboard figures, late purchases",
        task="loyalty_site.dashboard_refresh_late",
        minute="50",
        hour="2",
        description="Recompute the dashboard's last LOYALTY_LATE_PURCHASE_DAYS days, for "
        "purchases sent late (loyalty_site).",
    ),
    # loyalty_site (channel API and webhooks)
    Schedule(
        name="Idempotency keys purge",
        task="loyalty_site.idempotency_records_purge",
        minute="20",
        hour="4",
        description="Forget Idempotency-Keys older than LOYALTY_IDEMPOTENCY_TTL_HOURS (API).",
    ),
    Schedule(
        name="Webhook deliveries purge",
        task="loyalty_site.webhook_deliveries_purge",
        minute="25",
        hour="4",
        description="Delete sent or failed deliveries older than LOYALTY_WEBHOOK_KEEP_DAYS.",
    ),
    Schedule(
        name="Points expiring soon webhooks",
        task="loyalty_site.points_expiring_soon_notify",
        minute="0",
        hour="9",
        description="Announce points expiring in LOYALTY_WEBHOOK_EXPIRING_DAYS days (webhooks).",
    ),
]


@transaction.atomic
def schedules_sync(*, reset: bool = False) -> dict[str, str]:
    """Write SCHEDULES into django-celery-beat; returns name → created / reset / kept."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    outcome = {}
    for entry in SCHEDULES:
        crontab, _created = CrontabSchedule.objects.get_or_create(
            minute=entry.minute,
            hour=entry.hour,
            day_of_week=entry.day_of_week,
            day_of_month=entry.day_of_month,
            month_of_year=entry.month_of_year,
            timezone="UTC",
        )
        task = PeriodicTask.objects.filter(name=entry.name).first()
        if task is None:
            PeriodicTask.objects.create(
                name=entry.name, task=entry.task, crontab=crontab, description=entry.description
            )
            outcome[entry.name] = "created"
        elif reset:
            task.task = entry.task
            task.crontab = crontab
            task.interval = None
            task.enabled = True
            task.description = entry.description
            task.save()
            outcome[entry.name] = "reset"
        else:
            outcome[entry.name] = "kept"
    return outcome
