"""Celery tasks: thin wrappers around rewards.services, safe to run twice or concurrently.

Retries on database errors come from the project's base task (loyalty_site.celery).
"""

from celery import shared_task

from rewards import services


@shared_task(name="rewards.reservations_expire")
def reservations_expire_task() -> int:
    return services.reservations_expire()


@shared_task(name="rewards.voucher_codes_expire")
def voucher_codes_expire_task() -> int:
    return services.voucher_codes_expire()
