"""Shipping the rewards that ship, and blanking the addresses on erasure."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.errors import ReasonRequired
from members.models import Member
from members.services import audit_record
from rewards.errors import (
    FulfilmentTransition,
)
from rewards.models import Redemption
from rewards.services.redemptions import _locked

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
    actor=None,
    reason: str = "",
    now: datetime | None = None,
) -> Redemption:
    """Move a shipment on: to ship → shipped → delivered, shipped or delivered → returned.

    A staff user (``actor``: the shipping page, the admin) must give a ``reason``; the change is
    recorded in the member's audit trail with both. Without an actor (the demo data, an import)
    nothing is audited. Setting the status it already has changes nothing, but a new tracking
    code given with it is saved (and audited): a parcel's code is often known only later.
    """
    reason = (reason or "").strip()
    if actor is not None and not reason:
        raise ReasonRequired(fields={"reason": ReasonRequired.default_detail})
    redemption = _locked(redemption)
    old = redemption.fulfilment_status
    tracking = tracking_code.strip() if tracking_code is not None else None
    if tracking is not None and tracking == redemption.tracking_code:
        tracking = None
    if old == status and tracking is None:
        return redemption
    if old != status and status not in FULFILMENT_NEXT.get(old, set()):
        raise FulfilmentTransition(
            _("Cannot go from “%(old)s” to “%(new)s”.")
            % {
                "old": redemption.get_fulfilment_status_display(),
                "new": Redemption.FulfilmentStatus(status).label
                if status in Redemption.FulfilmentStatus.values
                else status,
            }
        )
    fields = []
    if old != status:
        redemption.fulfilment_status = status
        redemption.fulfilment_updated_at = now or timezone.now()
        fields += ["fulfilment_status", "fulfilment_updated_at"]
    if tracking is not None:
        redemption.tracking_code = tracking
        fields.append("tracking_code")
    redemption.save(update_fields=fields)
    if actor is not None:
        audit_record(
            actor=actor,
            action="fulfilment_set",
            member=redemption.member,
            reason=reason,
            # The tracking code is the carrier's, not personal; the address is never copied.
            details={
                "redemption_id": redemption.pk,
                "from": old,
                "to": status,
                **({"tracking_code": tracking} if tracking is not None else {}),
            },
        )
    return redemption
