"""Celery tasks: thin wrappers around rewards.services, safe to run twice or concurrently.

Each job is a coordinator that lists what is due as of one moment and sends chunk tasks with it
(``members.jobs``); retries on database errors, deadlocks included, come from the project's base
task (loyalty_site.celery).
"""

from celery import shared_task
from django.utils import timezone

from members.jobs import chunks_send, moment_parse
from rewards import selectors, services


@shared_task(name="rewards.reservations_expire")
def reservations_expire_task() -> int:
    now = timezone.now()
    due = selectors.reservations_expiring(now=now)
    return chunks_send(reservations_expire_chunk, due, at=now)


@shared_task(name="rewards.reservations_expire_chunk")
def reservations_expire_chunk(ids: list[int], now: str) -> int:
    return services.reservations_expire(now=moment_parse(now), ids=ids)


@shared_task(name="rewards.voucher_codes_expire")
def voucher_codes_expire_task() -> int:
    now = timezone.now()
    due = selectors.voucher_codes_expiring(now=now)
    return chunks_send(voucher_codes_expire_chunk, due, at=now)


@shared_task(name="rewards.voucher_codes_expire_chunk")
def voucher_codes_expire_chunk(ids: list[int], now: str) -> int:
    return services.voucher_codes_expire(now=moment_parse(now), ids=ids)
