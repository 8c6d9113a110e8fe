"""Purchase and return records, the facts that points are earned for and taken back for."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from ledger import errors
from ledger.models import Purchase, PurchaseLine, Return, ReturnLine
from loyalty_site.errors import Conflict, DomainError
from members.models import Card, Member
from members.rows import Rows


def purchase_store_first(
    *,
    member: Member,
    channel: str,
    external_id: str,
    amount: Decimal,
    currency: str,
    occurred_at: datetime,
    store: str = "",
    lines: Iterable[dict] = (),
    card: Card | None = None,
) -> tuple[Purchase, bool]:
    """Store a purchase record and its lines; return it and whether it is the member's first.

    The same (channel, external id) is refused. The caller holds the member's row lock
    (``campaigns.services.purchase_record`` does), so no other purchase of the member commits
    meanwhile: "first" stays true until the caller's transaction ends.
    """
    currency = (currency or "").upper()
    if len(currency) != 3 or not currency.isalpha():
        raise errors.InvalidCurrency()
    # No conversion: an amount in another currency would earn at the programme's rate.
    if currency != settings.LOYALTY_CURRENCY.upper():
        raise errors.CurrencyNotSupported(
            fields={"currency": errors.CurrencyNotSupported.default_detail}
        )
    # A repeat is found by looking before the insert, together with the look for an earlier
    # purchase (one statement with the two EXISTS), rather than by
    # catching the unique constraint's violation: after a failed INSERT, PostgreSQL runs no
    # further query in the transaction, so telling that violation apart from another would cost
    # a savepoint (two statements on every purchase) or the constraint's name (PostgreSQL
    # only). The member lock serialises this member's purchases only: another member's purchase
    # with the same (channel, external id) committing in between still meets the unique
    # constraint; that is told by the error's text (both databases name the constraint or its
    # columns) and refused the same way, the caller's transaction rolling back whole.
    # Hand-written: the ORM took longer to compile the two EXISTS than the database to answer.
    purchase_t = Purchase._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT EXISTS (SELECT 1 FROM {purchase_t} WHERE channel = %s AND external_id = %s),"
            f" EXISTS (SELECT 1 FROM {purchase_t} WHERE member_id = %s)",
            [channel, external_id, member.pk],
        )
        repeat, earlier = cursor.fetchone()
    if repeat:
        raise errors.DuplicatePurchase()
    try:
        purchase = _purchase_insert(
            member=member,
            card=card,
            channel=channel,
            external_id=external_id,
            amount=amount,
            currency=currency,
            occurred_at=occurred_at,
            store=store,
            lines=lines,
        )
    except IntegrityError as exc:
        if any(mark in str(exc) for mark in _REPEAT_MARKS):
            raise errors.DuplicatePurchase() from None
        raise
    return purchase, not earlier


# How the unique (channel, external id) constraint's violation reads: PostgreSQL names the
# constraint, SQLite its columns.
_REPEAT_MARKS = (
    "purchase_channel_external_id",
    "ledger_purchase.channel, ledger_purchase.external_id",
)


def _purchase_insert(
    *, member, card, channel, external_id, amount, currency, occurred_at, store, lines
) -> Purchase:
    # Every channel's purchase comes here: written through members.rows, as bulk_create
    # without compiling its statement each time (nothing listens to these rows' signals).
    purchase = Purchase(
        member=member,
        card=card,
        channel=channel,
        external_id=external_id,
        amount=Decimal(amount),
        currency=currency,
        occurred_at=occurred_at,
        store=store,
        status=Purchase.Status.RECORDED,
    )
    with transaction.atomic(savepoint=False):  # See "Savepoints" in posting.py.
        _purchases.insert([purchase])
        _lines.insert(
            [
                PurchaseLine(
                    purchase=purchase,
                    sku=line.get("sku", ""),
                    category=line.get("category", ""),
                    quantity=int(line.get("quantity", 1)),
                    amount=Decimal(line["amount"]),
                )
                for line in lines
            ]
        )
    return purchase


_purchases = Rows(Purchase)
_lines = Rows(PurchaseLine)


def return_store(
    *,
    purchase: Purchase,
    lines: Iterable[dict] | None = None,
    amount: Decimal | None = None,
    external_id: str = "",
) -> Return:
    """Record a return of (part of) a purchase.

    ``lines``: dicts with ``line`` (a PurchaseLine or its id), ``quantity`` and optionally
    ``amount`` (default: the line's amount in proportion). Without lines, ``amount`` (default:
    all that is not returned yet). Never more than what is left of the purchase.
    """
    with transaction.atomic():
        locked = Purchase.objects.select_for_update().get(pk=purchase.pk)
        if external_id and Return.objects.filter(purchase=locked, external_id=external_id).exists():
            raise Conflict(_("This return was recorded already."), code="duplicate_return")
        returned = locked.returns.aggregate(total=Sum("amount"))["total"] or Decimal("0")
        left = locked.amount - returned
        # A second full return would store an empty return and answer as if it took something.
        if left <= 0 and locked.amount > 0:
            raise errors.NothingToReturn()
        rows = []
        if lines is not None:
            by_id = {line.pk: line for line in locked.lines.all()}
            total = Decimal("0")
            for item in lines:
                line_ref = item["line"]
                line = by_id.get(getattr(line_ref, "pk", line_ref))
                if line is None:
                    raise DomainError(_("Unknown purchase line."), code="unknown_line")
                quantity = int(item.get("quantity", line.quantity))
                done = line.return_lines.aggregate(total=Sum("quantity"))["total"] or 0
                if quantity <= 0 or quantity + done > line.quantity:
                    raise errors.ReturnExceedsPurchase()
                line_amount = item.get("amount")
                if line_amount is None:
                    line_amount = (line.amount * quantity / line.quantity).quantize(Decimal("0.01"))
                rows.append((line, quantity, Decimal(line_amount)))
                total += Decimal(line_amount)
            amount = total
        elif amount is None:
            amount = left
        amount = Decimal(amount)
        if amount < 0 or amount > left:
            raise errors.ReturnExceedsPurchase()
        record = Return.objects.create(purchase=locked, external_id=external_id, amount=amount)
        ReturnLine.objects.bulk_create(
            ReturnLine(return_record=record, line=line, quantity=quantity, amount=line_amount)
            for line, quantity, line_amount in rows
        )
    return record
