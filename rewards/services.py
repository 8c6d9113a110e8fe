"""Redeeming rewards and points, through ledger holds.

Points move only through the ledger: a redemption places a hold (reserve), posts it (confirm) or
voids it (cancel, expiry). One-step redemption places and posts in one transaction.

Lock order, in every service here: the redemption row, then the member's ledger account (locked
inside the ledger service), then the reward row (the stock UPDATE), then voucher code rows
(skip_locked, so they never wait). One order means concurrent redeems, cancels and the expiry
task cannot deadlock. Holding the account lock while counting a member's redemptions is also what
makes the per-member limit safe against two requests of the same member at once.
"""

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger import services as ledger_services
from ledger.errors import HoldNotOpen, InvalidPoints
from ledger.models import Hold
from loyalty_site.errors import DomainError
from members.events import event_emit
from members.models import Member
from rewards import codes
from rewards.errors import (
    DiscountTooSmall,
    FulfilmentTransition,
    LimitReached,
    OutOfStock,
    RedemptionConfirmed,
    RedemptionNotReserved,
    ReservationExpired,
    RewardUnavailable,
    VoucherNotFound,
    VoucherNotUsable,
    VoucherPoolEmpty,
)
from rewards.models import Redemption, Reward, RewardTierPrice, VoucherCode

CENT = Decimal("0.01")
# Redemptions that count towards a reward's per-member limit: a cancelled or expired
# reservation gave the member nothing.
COUNTING_STATUSES = (Redemption.Status.RESERVED, Redemption.Status.CONFIRMED)


def reward_cost(*, reward: Reward, member: Member) -> int:
    """What this member pays for the reward: their tier's price if it has one."""
    tier_id = member.tier_id
    if tier_id is not None:
        price = (
            RewardTierPrice.objects.filter(reward=reward, tier_id=tier_id)
            .values_list("points", flat=True)
            .first()
        )
        if price is not None:
            return price
    return reward.points


def _reward_check(*, reward: Reward, member: Member, channel_kind: str, now: datetime) -> None:
    if not reward.active or not reward.is_valid_at(now):
        raise RewardUnavailable()
    if channel_kind and reward.channels and channel_kind not in reward.channels:
        raise RewardUnavailable()
    tiers = set(reward.visible_tiers.values_list("pk", flat=True))
    if tiers and member.tier_id not in tiers:
        raise RewardUnavailable()


def _limit_check(*, reward: Reward, member: Member) -> None:
    if reward.limit_per_member is None:
        return
    taken = Redemption.objects.filter(
        member=member, reward=reward, status__in=COUNTING_STATUSES
    ).count()
    if taken >= reward.limit_per_member:
        raise LimitReached()


def _stock_take(*, reward: Reward) -> None:
    if reward.stock is None:
        return
    # Conditional decrement: PostgreSQL re-checks `stock > 0` after waiting for a concurrent
    # redeemer's row lock, so the last item goes to exactly one of them.
    taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
    if not taken:
        raise OutOfStock()


def _stock_return(*, reward_id: int) -> None:
    Reward.objects.filter(pk=reward_id, stock__isnull=False).update(stock=F("stock") + 1)


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


def _shipping_address(*, member: Member, given: str) -> str:
    if given.strip():
        return given.strip()
    # The member's address at the time of redemption, kept as a snapshot: a later move must
    # not change where a parcel already sent went.
    # Members have no address field of their own; imports keep it in the profile attributes.
    profile = member.profile or {}
    return str(profile.get("shipping_address") or profile.get("address") or "")


def _redemption_open(
    *,
    member: Member,
    reward: Reward | None,
    points: int | None,
    channel: str,
    channel_kind: str,
    reference: str,
    shipping_address: str,
    now: datetime,
    reserve: bool,
    discount_amount: Decimal | None = None,
    currency: str = "",
) -> Redemption:
    if reward is not None:
        reward = Reward.objects.get(pk=reward.pk)
        _reward_check(reward=reward, member=member, channel_kind=channel_kind, now=now)
        points = reward_cost(reward=reward, member=member)
    elif not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise InvalidPoints(fields={"points": _("Must be a positive whole number.")})

    reserved_until = (
        now + timedelta(minutes=settings.LOYALTY_RESERVATION_MINUTES) if reserve else None
    )
    hold_reference = reference or (f"reward {reward.pk}" if reward else "points")
    # The ledger locks the account and refuses a blocked member, an account in debt and a
    # balance that would go below zero. The hold's own expiry is a safety net only: the
    # reservation task below releases it (with the stock) at the same moment.
    hold = ledger_services.hold_place(
        member=member,
        points=points,
        reference=hold_reference,
        channel=channel,
        expires_at=reserved_until,
        at=now,
    )
    code = None
    if reward is not None:
        _limit_check(reward=reward, member=member)
        _stock_take(reward=reward)
        if reward.gives_code:
            code = _code_claim(reward=reward, now=now)

    entry = None
    if not reserve:
        entry = ledger_services.hold_post(hold=hold, reason=_("Redemption"), at=now)
    redemption = Redemption.objects.create(
        member=member,
        reward=reward,
        points=points,
        status=Redemption.Status.RESERVED if reserve else Redemption.Status.CONFIRMED,
        hold=hold,
        entry=entry,
        channel=channel,
        reference=reference,
        discount_amount=discount_amount,
        currency=currency,
        created_at=now,
        reserved_until=reserved_until,
        confirmed_at=None if reserve else now,
    )
    if not reserve:
        _fulfilment_start(redemption=redemption, member=member, shipping_address=shipping_address)
        _confirmed_announce(redemption)
    elif reward is not None and reward.ships:
        redemption.shipping_address = _shipping_address(member=member, given=shipping_address)
        redemption.save(update_fields=["shipping_address"])
    if code is not None:
        code.status = VoucherCode.Status.ISSUED
        code.redemption = redemption
        code.issued_at = now
        code.save(update_fields=["status", "redemption", "issued_at"])
    return redemption


def _fulfilment_start(*, redemption: Redemption, member: Member, shipping_address: str) -> None:
    if redemption.reward is None or not redemption.reward.ships:
        return
    redemption.fulfilment_status = Redemption.FulfilmentStatus.TO_SHIP
    redemption.fulfilment_updated_at = redemption.confirmed_at
    redemption.shipping_address = _shipping_address(
        member=member, given=shipping_address or redemption.shipping_address
    )
    redemption.save(
        update_fields=["fulfilment_status", "fulfilment_updated_at", "shipping_address"]
    )


@transaction.atomic
def redemption_redeem(
    *,
    member: Member,
    reward: Reward | None = None,
    points: int | None = None,
    channel: str = "",
    channel_kind: str = "",
    reference: str = "",
    shipping_address: str = "",
    now: datetime | None = None,
) -> Redemption:
    """Redeem a reward (or, without one, a number of points) in one step: confirmed at once.

    `channel_kind` (pos/webshop/app/partner), when given, must be one the reward is offered in;
    staff redeeming in the back office leave it empty.
    """
    return _redemption_open(
        member=member,
        reward=reward,
        points=points,
        channel=channel,
        channel_kind=channel_kind,
        reference=reference,
        shipping_address=shipping_address,
        now=now or timezone.now(),
        reserve=False,
    )


@transaction.atomic
def redemption_reserve(
    *,
    member: Member,
    reward: Reward | None = None,
    points: int | None = None,
    channel: str = "",
    channel_kind: str = "",
    reference: str = "",
    shipping_address: str = "",
    now: datetime | None = None,
) -> Redemption:
    """Reserve points, stock and a voucher code for LOYALTY_RESERVATION_MINUTES.

    Confirm or cancel it within that time; otherwise `reservations_expire` releases it.
    """
    return _redemption_open(
        member=member,
        reward=reward,
        points=points,
        channel=channel,
        channel_kind=channel_kind,
        reference=reference,
        shipping_address=shipping_address,
        now=now or timezone.now(),
        reserve=True,
    )


def _locked(redemption: Redemption) -> Redemption:
    return Redemption.objects.select_for_update(of=("self",)).get(pk=redemption.pk)


@transaction.atomic
def redemption_confirm(*, redemption: Redemption, now: datetime | None = None) -> Redemption:
    """Turn a reservation into a redemption: the held points are debited. Confirming twice is
    harmless (the second call returns the confirmed redemption)."""
    now = now or timezone.now()
    redemption = _locked(redemption)
    if redemption.status == Redemption.Status.CONFIRMED:
        return redemption
    if redemption.status == Redemption.Status.EXPIRED:
        raise ReservationExpired()
    if redemption.status != Redemption.Status.RESERVED:
        raise RedemptionNotReserved()
    if redemption.reserved_until <= now:
        # Too late, even if the expiry task has not run yet: it will release points and stock.
        raise ReservationExpired()
    entry = ledger_services.hold_post(hold=redemption.hold, reason=_("Redemption"), at=now)
    redemption.entry = entry
    redemption.status = Redemption.Status.CONFIRMED
    redemption.confirmed_at = now
    redemption.save(update_fields=["entry", "status", "confirmed_at"])
    _fulfilment_start(redemption=redemption, member=redemption.member, shipping_address="")
    _confirmed_announce(redemption)
    return redemption


def _confirmed_announce(redemption: Redemption) -> None:
    # The debit entry was posted under the account lock a moment ago: its balance is current.
    event_emit(
        event_type="redemption.confirmed",
        data={
            "id": redemption.pk,
            "member": redemption.member.public_id,
            "reward": redemption.reward_id,
            "points": redemption.points,
            "balance": redemption.entry.balance_after,
        },
        channel=redemption.channel,
    )


def _release(*, redemption: Redemption, now: datetime) -> None:
    """Give back what a reservation took: held points, stock, the voucher code."""
    hold = Hold.objects.get(pk=redemption.hold_id)
    # The ledger's own hold expiry (same deadline) may have released the points already.
    if hold.status == Hold.Status.OPEN:
        with contextlib.suppress(HoldNotOpen):
            ledger_services.hold_void(hold=hold, at=now)
    if redemption.reward_id is not None:
        _stock_return(reward_id=redemption.reward_id)
    code = VoucherCode.objects.select_for_update().filter(redemption=redemption).first()
    if code is not None and code.status == VoucherCode.Status.ISSUED:
        # The reservation never became valid, so the code was never usable: back to the pool.
        if code.expires_at is not None and code.expires_at <= now:
            code.status = VoucherCode.Status.EXPIRED
        else:
            code.status, code.redemption, code.issued_at = VoucherCode.Status.UNUSED, None, None
        code.save(update_fields=["status", "redemption", "issued_at"])


@transaction.atomic
def redemption_cancel(*, redemption: Redemption, now: datetime | None = None) -> Redemption:
    """Cancel a reservation: points, stock and code return. A confirmed redemption is final."""
    now = now or timezone.now()
    redemption = _locked(redemption)
    if redemption.status == Redemption.Status.CONFIRMED:
        raise RedemptionConfirmed()
    if redemption.status != Redemption.Status.RESERVED:
        return redemption
    redemption.status = Redemption.Status.CANCELLED
    redemption.ended_at = now
    redemption.save(update_fields=["status", "ended_at"])
    _release(redemption=redemption, now=now)
    return redemption


def reservations_expire(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Release reservations past their time. Safe to run twice at once: each row is claimed by a
    conditional UPDATE, and only the run that changed it releases its points and stock."""
    now = now or timezone.now()
    released = 0
    seen: set[int] = set()
    while True:
        ids = [
            pk
            for pk in Redemption.objects.filter(
                status=Redemption.Status.RESERVED, reserved_until__lte=now
            )
            .order_by("reserved_until", "pk")
            .values_list("pk", flat=True)[:batch_size]
            if pk not in seen
        ]
        if not ids:
            return released
        for pk in ids:
            seen.add(pk)
            with transaction.atomic():
                claimed = Redemption.objects.filter(
                    pk=pk, status=Redemption.Status.RESERVED, reserved_until__lte=now
                ).update(status=Redemption.Status.EXPIRED, ended_at=now)
                if not claimed:
                    continue
                _release(redemption=Redemption.objects.get(pk=pk), now=now)
                released += 1


@dataclass(frozen=True)
class Discount:
    amount: Decimal
    currency: str
    points: int
    redemption: Redemption


def points_value(*, points: int) -> Decimal:
    """Money value of points: points × LOYALTY_POINT_VALUE, rounded DOWN to whole cents, so a
    discount never exceeds what the burned points are worth."""
    return (Decimal(points) * settings.LOYALTY_POINT_VALUE).quantize(CENT, rounding=ROUND_DOWN)


@transaction.atomic
def points_pay(
    *,
    member: Member,
    points: int,
    channel: str = "",
    reference: str = "",
    now: datetime | None = None,
) -> Discount:
    """Pay with points at a till: burn `points` and return the discount they are worth."""
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise InvalidPoints(fields={"points": _("Must be a positive whole number.")})
    amount = points_value(points=points)
    if amount <= 0:
        raise DiscountTooSmall(fields={"points": _("Worth less than one cent.")})
    redemption = _redemption_open(
        member=member,
        reward=None,
        points=points,
        channel=channel,
        channel_kind="",
        reference=reference,
        shipping_address="",
        now=now or timezone.now(),
        reserve=False,
        discount_amount=amount,
        currency=settings.LOYALTY_CURRENCY,
    )
    return Discount(
        amount=amount, currency=settings.LOYALTY_CURRENCY, points=points, redemption=redemption
    )


FULFILMENT_NEXT = {
    Redemption.FulfilmentStatus.TO_SHIP: {Redemption.FulfilmentStatus.SHIPPED},
    Redemption.FulfilmentStatus.SHIPPED: {
        Redemption.FulfilmentStatus.DELIVERED,
        Redemption.FulfilmentStatus.RETURNED,
    },
    Redemption.FulfilmentStatus.DELIVERED: {Redemption.FulfilmentStatus.RETURNED},
    Redemption.FulfilmentStatus.RETURNED: set(),
}


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
def redemptions_scrub(*, member: Member) -> int:
    """Blank the shipping addresses copied onto a member's redemptions (erasure, invariant 8)."""
    return (
        Redemption.objects.filter(member=member)
        .exclude(shipping_address="")
        .update(shipping_address="")
    )


@transaction.atomic
def fulfilment_set(
    *,
    redemption: Redemption,
    status: str,
    tracking_code: str | None = None,
    now: datetime | None = None,
) -> Redemption:
    """Move a shipment on: to ship → shipped → delivered, shipped or delivered → returned."""
    redemption = _locked(redemption)
    if redemption.fulfilment_status == status:
        return redemption
    if status not in FULFILMENT_NEXT.get(redemption.fulfilment_status, set()):
        raise FulfilmentTransition(
            _("Cannot go from “%(old)s” to “%(new)s”.")
            % {
                "old": redemption.get_fulfilment_status_display(),
                "new": Redemption.FulfilmentStatus(status).label
                if status in Redemption.FulfilmentStatus.values
                else status,
            }
        )
    redemption.fulfilment_status = status
    redemption.fulfilment_updated_at = now or timezone.now()
    fields = ["fulfilment_status", "fulfilment_updated_at"]
    if tracking_code is not None:
        redemption.tracking_code = tracking_code.strip()
        fields.append("tracking_code")
    redemption.save(update_fields=fields)
    return redemption


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
def voucher_codes_expire(*, now: datetime | None = None) -> int:
    """Mark codes past their expiry date expired (unused and issued ones alike)."""
    now = now or timezone.now()
    return VoucherCode.objects.filter(
        status__in=[VoucherCode.Status.UNUSED, VoucherCode.Status.ISSUED],
        expires_at__lte=now,
    ).update(status=VoucherCode.Status.EXPIRED)
