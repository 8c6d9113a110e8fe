"""Voucher codes: claimed by a redemption, used at a till, generated, expired, discarded."""

from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty_site.errors import DomainError
from rewards import codes
from rewards.errors import (
    VoucherNotFound,
    VoucherNotUsable,
    VoucherPoolEmpty,
)
from rewards.models import Redemption, Reward, VoucherCode


def _code_claim(*, reward: Reward, now: datetime) -> VoucherCode:
    # skip_locked: a code another transaction is handing out right now is simply passed over,
    # so concurrent redeemers never queue behind each other on the pool.
    code = (
        VoucherCode.objects.select_for_update(skip_locked=True)
        .filter(reward=reward, status=VoucherCode.Status.UNUSED)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .order_by(F("expires_at").asc(nulls_last=True), "pk")
        .first()
    )
    if code is None:
        raise VoucherPoolEmpty()
    return code


@transaction.atomic
def voucher_codes_discard(*, codes) -> int:
    """Delete codes that were never handed out; an issued or used code belongs to a redemption
    and stays. Returns how many went."""
    deleted, _by_model = (
        VoucherCode.objects.filter(pk__in=[code.pk for code in codes])
        .filter(status=VoucherCode.Status.UNUSED)
        .delete()
    )
    return deleted


@transaction.atomic
def voucher_use(*, code: str, channel: str = "", now: datetime | None = None) -> VoucherCode:
    """A channel reports a voucher used at a till or checkout. A code is used at most once."""
    now = now or timezone.now()
    voucher = (
        VoucherCode.objects.select_for_update(of=("self",))
        .select_related("redemption")
        .filter(code=codes.normalise(code))
        .first()
    )
    if voucher is None:
        raise VoucherNotFound()
    if voucher.status == VoucherCode.Status.USED:
        raise VoucherNotUsable(_("This voucher code has been used already."), code="voucher_used")
    if voucher.status == VoucherCode.Status.EXPIRED or (
        voucher.expires_at is not None and voucher.expires_at <= now
    ):
        raise VoucherNotUsable(_("This voucher code has expired."), code="voucher_expired")
    if (
        voucher.status != VoucherCode.Status.ISSUED
        or voucher.redemption.status != Redemption.Status.CONFIRMED
    ):
        raise VoucherNotUsable(
            _("This voucher code has not been issued to a member."), code="voucher_not_issued"
        )
    voucher.status = VoucherCode.Status.USED
    voucher.used_at = now
    voucher.used_channel = channel
    voucher.save(update_fields=["status", "used_at", "used_channel"])
    return voucher


@transaction.atomic
def voucher_codes_generate(
    *, reward: Reward, count: int, expires_at: datetime | None = None
) -> list[VoucherCode]:
    """Add `count` fresh random codes to a reward's pool."""
    if count <= 0 or count > 100_000:
        raise DomainError(_("Generate between 1 and 100000 codes."), code="invalid_count")
    created: list[VoucherCode] = []
    while len(created) < count:
        wanted = {codes.generate() for _i in range(count - len(created))}
        taken = set(VoucherCode.objects.filter(code__in=wanted).values_list("code", flat=True))
        batch = [
            VoucherCode(code=code, reward=reward, expires_at=expires_at) for code in wanted - taken
        ]
        created += VoucherCode.objects.bulk_create(batch, batch_size=1000)
    return created


@transaction.atomic
def voucher_codes_due(*, now: datetime):
    """Unused and issued codes past their expiry date at ``now`` (what
    ``voucher_codes_expire`` marks, ``rewards.selectors.voucher_codes_expiring`` lists)."""
    return VoucherCode.objects.filter(
        status__in=[VoucherCode.Status.UNUSED, VoucherCode.Status.ISSUED],
        expires_at__lte=now,
    )


def voucher_codes_expire(*, now: datetime | None = None, ids: list[int] | None = None) -> int:
    """Mark codes past their expiry date expired (unused and issued ones alike); only those of
    ``ids`` when given (a chunk of the job). One conditional UPDATE: a second run changes none."""
    now = now or timezone.now()
    due = voucher_codes_due(now=now)
    if ids is not None:
        due = due.filter(pk__in=ids)
    return due.update(status=VoucherCode.Status.EXPIRED)


@transaction.atomic
def voucher_codes_import(*, reward: Reward, rows: list[tuple[str, datetime | None]]) -> int:
    """Add imported codes (code, expires at) to a reward's pool; returns how many were new.

    A code that exists already, in this pool or another, is skipped and never moved: it may be
    issued to a member. Codes are stored normalised (``codes.normalise``), as tills look them up.
    """
    wanted: dict[str, datetime | None] = {}
    for code, expires_at in rows:
        code = codes.normalise(code)
        if code:
            wanted.setdefault(code, expires_at)
    taken = set(VoucherCode.objects.filter(code__in=list(wanted)).values_list("code", flat=True))
    batch = [
        VoucherCode(code=code, reward=reward, expires_at=expires_at)
        for code, expires_at in wanted.items()
        if code not in taken
    ]
    # ignore_conflicts: a concurrent import of the same code wins, this one skips it.
    VoucherCode.objects.bulk_create(batch, batch_size=1000, ignore_conflicts=True)
    return len(batch)
