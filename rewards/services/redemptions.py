"""Redeeming rewards and points, through ledger holds.

Points move only through the ledger: a redemption places a hold (reserve), posts it (confirm) or
voids it (cancel, expiry). One-step redemption places and posts in one transaction.

Lock order, in every service here: the redemption row, then the member's ledger account (locked
inside the ledger service), then the reward row (the stock UPDATE), then voucher code rows
(skip_locked, so they never wait). One order means concurrent redeems, cancels and the expiry
task cannot deadlock. Holding the account lock while counting a member's redemptions is also what
makes the per-member limit safe against two requests of the same member at once.

The member row is not locked here, only referenced: the new redemption's foreign key makes the
commit take ``FOR KEY SHARE`` on it. Purchases lock the member row before the account (the
order of ``ledger.services.posting``), but ``FOR NO KEY UPDATE``, which key-share checks do not
wait for; so a redemption holding the account never waits for a purchase holding the member.
The redemption row is locked the same way, for the rows that reference it (a voucher code).
"""

import contextlib
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ledger import services as ledger_services
from ledger.errors import HoldNotOpen, InvalidPoints
from ledger.models import Hold
from members.errors import ReasonRequired
from members.events import event_emit
from members.models import Member
from members.services import audit_record
from rewards.errors import (
    RedemptionConfirmed,
    RedemptionNotReserved,
    ReservationExpired,
)
from rewards.models import Redemption, Reward, VoucherCode
from rewards.services.catalogue import (
    _limit_check,
    _reward_check,
    _stock_return,
    _stock_take,
    reward_cost,
)
from rewards.services.vouchers import _code_claim

CENT = Decimal("0.01")


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
    offered: bool = False,
) -> Redemption:
    if reward is not None:
        reward = Reward.objects.get(pk=reward.pk)
        _reward_check(
            reward=reward, member=member, channel_kind=channel_kind, now=now, offered=offered
        )
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
        entry = ledger_services.hold_post(hold=hold, reason_code="redemption", at=now)
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
    offered: bool = False,
) -> Redemption:
    """Redeem a reward (or, without one, a number of points) in one step: confirmed at once.

    `channel_kind` (pos/webshop/app/partner), when given, must be one the reward is offered in;
    staff redeeming in the back office leave it empty. An offer-only reward needs `offered`:
    the caller's word that an active campaign offers it to this member
    (`campaigns.offers.member_offered`); without it the redemption is refused.
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
        offered=offered,
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
    offered: bool = False,
) -> Redemption:
    """Reserve points, stock and a voucher code for LOYALTY_RESERVATION_MINUTES.

    Confirm or cancel it within that time; otherwise `reservations_expire` releases it.
    `offered` as for `redemption_redeem`.
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
        offered=offered,
    )


def _locked(redemption: Redemption) -> Redemption:
    return Redemption.objects.select_for_update(of=("self",), no_key=True).get(pk=redemption.pk)


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
    entry = ledger_services.hold_post(hold=redemption.hold, reason_code="redemption", at=now)
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
def redemption_cancel(
    *, redemption: Redemption, actor=None, reason: str = "", now: datetime | None = None
) -> Redemption:
    """Cancel a reservation: points, stock and code return. A confirmed redemption is final.

    A channel cancels without an actor; a staff user (``actor``: the redemptions page, the
    admin) must give a ``reason``, and the cancellation is recorded in the member's audit trail.
    Cancelling a reservation that has already ended changes (and audits) nothing.
    """
    reason = (reason or "").strip()
    if actor is not None and not reason:
        raise ReasonRequired(fields={"reason": ReasonRequired.default_detail})
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
    if actor is not None:
        audit_record(
            actor=actor,
            action="redemption_cancel",
            member=redemption.member,
            reason=reason,
            details={"redemption_id": redemption.pk, "points": redemption.points},
        )
    return redemption


def reservations_due(*, now: datetime):
    """Reservations past their time at ``now``: what ``reservations_expire`` releases (and
    ``rewards.selectors.reservations_expiring`` lists for the job's chunks)."""
    return Redemption.objects.filter(status=Redemption.Status.RESERVED, reserved_until__lte=now)


def reservations_expire(
    *, now: datetime | None = None, ids: list[int] | None = None, batch_size: int = 500
) -> int:
    """Release reservations past their time. Safe to run twice at once: each row is claimed by a
    conditional UPDATE, and only the run that changed it releases its points and stock.

    ``ids`` limits the run to those reservations (a chunk of the job)."""
    now = now or timezone.now()
    released = 0
    seen: set[int] = set()
    due = reservations_due(now=now)
    if ids is not None:
        due = due.filter(pk__in=ids)
    while True:
        batch = [
            pk
            for pk in due.order_by("reserved_until", "pk").values_list("pk", flat=True)[:batch_size]
            if pk not in seen
        ]
        if not batch:
            return released
        for pk in batch:
            seen.add(pk)
            with transaction.atomic():
                claimed = (
                    reservations_due(now=now)
                    .filter(pk=pk)
                    .update(status=Redemption.Status.EXPIRED, ended_at=now)
                )
                if not claimed:
                    continue
                _release(redemption=Redemption.objects.get(pk=pk), now=now)
                released += 1
