"""Returns: record a full or partial return and take back the purchase's points in proportion."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.db.models import F, Sum

from campaigns.models import (
    PurchasePoints,
)
from campaigns.services.budgets import campaign_budgets_give_back
from campaigns.services.locks import balance_of, member_lock
from ledger import services as ledger_services
from ledger.models import Entry, PendingEarn, Purchase, Return


@dataclass
class ReturnResult:
    return_record: Return
    points_reversed: int
    balance: int


@transaction.atomic
def return_record(
    *, purchase: Purchase, lines=None, amount: Decimal | None = None, external_id: str = ""
) -> ReturnResult:
    """Record a full or partial return and take back the purchase's points in proportion.

    `lines` is a list of {"line_id", "quantity"}; without lines, `amount` (default: all that is
    left). What to take back is computed from all returns so far, not from this one alone, so
    rounding never takes back more than was earned and a full return always takes back all.
    Pending points are cancelled first, then posted ones are reversed: the balance may go below
    zero (invariant 2: a clawback may create debt).
    """
    member = member_lock(purchase.member)
    purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
    if lines is not None:
        lines = [
            {"line": int(item["line_id"]), "quantity": int(item["quantity"])} for item in lines
        ]
    record = ledger_services.return_store(
        purchase=purchase,
        lines=lines,
        amount=Decimal(str(amount)) if amount is not None else None,
        external_id=external_id,
    )
    taken = returns_settle(purchase=purchase)
    balance, _pending = balance_of(member)
    return ReturnResult(return_record=record, points_reversed=taken, balance=balance)


def returns_settle(*, purchase: Purchase) -> int:
    """Take back the share of the purchase's points that its returns so far call for."""
    returned = purchase.returns.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    earned = PurchasePoints.objects.select_for_update().filter(purchase=purchase).first()
    if earned is None or purchase.amount <= 0 or returned <= 0:
        return 0
    if returned >= purchase.amount:
        target = earned.points
    else:
        share = Decimal(earned.points) * returned / purchase.amount
        target = int(share.to_integral_value(ROUND_FLOOR))
    todo = max(target - earned.points_reversed, 0)
    # Before the ledger's account lock: campaign rows come before it in the lock order.
    campaign_budgets_give_back(
        purchase=purchase,
        earned=earned.points,
        reversed_before=earned.points_reversed,
        reversed_after=earned.points_reversed + todo,
    )
    taken = _take_back(purchase=purchase, points=todo)
    PurchasePoints.objects.filter(pk=earned.pk).update(points_reversed=F("points_reversed") + taken)
    return taken


def _take_back(*, purchase: Purchase, points: int) -> int:
    taken = 0
    pendings = PendingEarn.objects.filter(
        purchase=purchase, status=PendingEarn.Status.PENDING
    ).order_by("id")
    for pending in pendings:
        take = min(pending.points, points - taken)
        if take > 0:
            ledger_services.pending_cancel(pending=pending, points=take)
            taken += take
    entries = Entry.objects.filter(purchase=purchase, kind=Entry.Kind.EARN).order_by("id")
    for entry in entries:
        if taken >= points:
            break
        done = -(
            Entry.objects.filter(refers_to=entry, kind=Entry.Kind.REVERSE).aggregate(
                total=Sum("amount")
            )["total"]
            or 0
        )
        take = min(entry.amount - done, points - taken)
        if take > 0:
            ledger_services.points_reverse(
                entry=entry,
                points=take,
                reason_code="purchase_return",
                reason_params={"id": purchase.external_id},
                channel=purchase.channel,
            )
            taken += take
    return taken
