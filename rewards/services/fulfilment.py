"""Shipping the rewards that ship, and blanking the addresses on erasure."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from members.models import Member
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
