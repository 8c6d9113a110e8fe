"""Celery tasks: thin wrappers around rewards.services, safe to run twice or concurrently."""

from celery import shared_task

from rewards import services


@shared_task(name="rewards.reservations_expire", autoretry_for=(ConnectionError,), max_retries=3)
def reservations_expire_task() -> int:
    return services.reservations_expire()


@shared_task(name="rewards.voucher_codes_expire", autoretry_for=(ConnectionError,), max_retries=3)
def voucher_codes_expire_task() -> int:
    return services.voucher_codes_expire()
