"""Conditions on points: the balance and the points about to expire."""

from datetime import timedelta

from django.db.models import OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from campaigns.segments import Condition, params, register
from ledger.models import Account, Lot


def _compile_balance(node: dict, context) -> Q:
    """The spendable balance (a member without an account has 0)."""
    balance = Coalesce(
        Subquery(Account.objects.filter(member=OuterRef("pk")).values("balance")[:1]), 0
    )
    return params.bounds_q(balance, node)


register(
    Condition(
        name="balance",
        label=_("Points balance"),
        check=params.check_bounds,
        compile=_compile_balance,
    )
)


def _check_expiring(node: dict) -> None:
    params.days(node, minimum=0)
    params.check_bounds(node, required=False)


def _compile_expiring(node: dict, context) -> Q:
    """At least `min` points (default 1) of open lots expire from now to the end of the day
    `days` days from today (0: today), local time."""
    end = params.local_midnight(params.today(context.now) + timedelta(days=node["days"] + 1))
    expiring = Coalesce(
        Subquery(
            Lot.objects.filter(
                account__member=OuterRef("pk"),
                remaining__gt=0,
                expired_at__isnull=True,
                expires_at__gte=context.now,
                expires_at__lt=end,
            )
            .order_by()
            .values("account")
            .annotate(total=Sum("remaining"))
            .values("total")
        ),
        0,
    )
    return params.bounds_q(expiring, node, default_min=1)


register(
    Condition(
        name="points_expiring",
        label=_("Points expiring within days"),
        check=_check_expiring,
        compile=_compile_expiring,
    )
)
