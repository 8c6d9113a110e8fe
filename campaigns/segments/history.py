"""Conditions on purchases: recency, frequency and monetary value over a window, what was
bought (SKUs, categories) and where (stores).

What counts: every purchase that was not rejected by the abuse guard (recorded ones and those
still under review), by the time it occurred (`occurred_at`). Frequency counts purchases, also
those later returned; monetary value is the amount spent in the programme's currency
(settings.LOYALTY_CURRENCY) minus what returns of those same purchases gave back, whenever the
return came in.
"""

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    Exists,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from campaigns.segments import Condition, invalid, params, register
from ledger.models import Purchase, PurchaseLine, Return

_MONEY = DecimalField(max_digits=14, decimal_places=2)


def counted_q(window: dict | None, now, *, prefix: str = "") -> Q:
    """The outer member's counted purchases within the window, as a filter on `prefix`."""
    return (
        Q(**{f"{prefix}member": OuterRef("pk")})
        & ~Q(**{f"{prefix}status": Purchase.Status.REJECTED})
        & params.window_q(f"{prefix}occurred_at", window, now)
    )


def purchases_of_member(window: dict | None, now) -> QuerySet:
    return Purchase.objects.filter(counted_q(window, now))


# -- recency -----------------------------------------------------------------------------------


def _compile_last_purchase(node: dict, context) -> Q:
    """The member's latest purchase falls in the window (never bought: no)."""
    window = node["window"]
    q = Q(Exists(purchases_of_member(window, context.now)))
    _start, end = params.window_bounds(window, context.now)
    if "days" not in window and end is not None:
        later = Purchase.objects.filter(member=OuterRef("pk"), occurred_at__gte=end).exclude(
            status=Purchase.Status.REJECTED
        )
        q &= ~Q(Exists(later))
    return q


register(
    Condition(
        name="last_purchase",
        label=_("Last purchase in a period (recency)"),
        check=lambda node: params.check_window(node, required=True),
        compile=_compile_last_purchase,
    )
)


# -- frequency ---------------------------------------------------------------------------------


def _check_frequency(node: dict) -> None:
    params.check_bounds(node)
    params.check_window(node)


def _compile_frequency(node: dict, context) -> Q:
    count = Coalesce(
        Subquery(
            purchases_of_member(node.get("window"), context.now)
            .order_by()
            .values("member")
            .annotate(n=Count("pk"))
            .values("n")
        ),
        0,
    )
    return params.bounds_q(count, node)


register(
    Condition(
        name="frequency",
        label=_("Number of purchases in a period (frequency)"),
        check=_check_frequency,
        compile=_compile_frequency,
    )
)


# -- monetary ----------------------------------------------------------------------------------


def _check_monetary(node: dict) -> None:
    params.check_bounds(node, integer=False)
    params.check_window(node)


def _compile_monetary(node: dict, context) -> Q:
    window = node.get("window")
    currency = settings.LOYALTY_CURRENCY
    spent = Subquery(
        purchases_of_member(window, context.now)
        .filter(currency=currency)
        .order_by()
        .values("member")
        .annotate(total=Sum("amount"))
        .values("total"),
        output_field=_MONEY,
    )
    returned = Subquery(
        Return.objects.filter(
            counted_q(window, context.now, prefix="purchase__"), purchase__currency=currency
        )
        .order_by()
        .annotate(one=Value(1))
        .values("one")
        .annotate(total=Sum("amount"))
        .values("total"),
        output_field=_MONEY,
    )
    zero = Value(0, output_field=_MONEY)
    net = Coalesce(spent, zero, output_field=_MONEY) - Coalesce(returned, zero, output_field=_MONEY)
    return params.bounds_q(net, node)


register(
    Condition(
        name="monetary",
        label=_("Amount spent in a period (monetary)"),
        check=_check_monetary,
        compile=_compile_monetary,
    )
)


# -- what and where ----------------------------------------------------------------------------


def _check_bought(node: dict) -> None:
    if "skus" not in node and "categories" not in node:
        raise invalid(_("Condition “bought” needs “skus”, “categories” or both."))
    for key in ("skus", "categories"):
        if key in node:
            params.names(node, key)
    params.check_window(node)


def _compile_bought(node: dict, context) -> Q:
    """A line of a counted purchase that matches every filter given (as an earning rule's)."""
    lines = PurchaseLine.objects.filter(
        counted_q(node.get("window"), context.now, prefix="purchase__")
    )
    if "skus" in node:
        lines = lines.filter(sku__in=node["skus"])
    if "categories" in node:
        lines = lines.filter(category__in=node["categories"])
    return Q(Exists(lines))


register(
    Condition(
        name="bought",
        label=_("Bought SKUs or categories"),
        check=_check_bought,
        compile=_compile_bought,
    )
)


def _check_store(node: dict) -> None:
    params.names(node, "in")
    params.check_window(node)


register(
    Condition(
        name="store_visited",
        label=_("Bought in stores"),
        check=_check_store,
        compile=lambda node, context: Q(
            Exists(
                purchases_of_member(node.get("window"), context.now).filter(store__in=node["in"])
            )
        ),
    )
)
