"""Members' jobs: the background jobs staff start from pages (members.background); their purge."""

from celery import shared_task
from django.conf import settings

from members import background


@shared_task(name="members.job_run", ignore_result=True, acks_late=True)
def job_run(job_id: int) -> str | None:
    return background.job_run(job_id)


@shared_task(name="members.jobs_purge", ignore_result=True)
def jobs_purge() -> int:
    return background.jobs_purge(older_than_days=settings.LOYALTY_BACKGROUND_JOB_KEEP_DAYS)
