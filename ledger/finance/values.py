"""The money value of one point, with its dated changes (``ledger.models.PointValue``).

Before the first recorded change the settings ``LOYALTY_POINT_VALUE`` and ``LOYALTY_CURRENCY``
apply. A change applies from its ``valid_from`` on; the reports value the points outstanding at
a moment at the value in force at that moment, and a roll-forward shows the effect of a change
inside its period on a line of its own (revaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _

from ledger.errors import PeriodClosed, ReasonRequired
from ledger.models import PointValue
from loyalty_site.errors import DomainError


@dataclass(frozen=True)
class Value:
    value: Decimal
    currency: str
    valid_from: datetime | None  # None: the setting, before any recorded change


def value_default() -> Value:
    return Value(Decimal(settings.LOYALTY_POINT_VALUE), settings.LOYALTY_CURRENCY, None)


def value_at(moment: datetime) -> Value:
    """The value of one point in force at ``moment``."""
    row = (
        PointValue.objects.filter(valid_from__lte=moment)
        .order_by("-valid_from", "-id")
        .values_list("value", "currency", "valid_from")
        .first()
    )
    return Value(*row) if row else value_default()


def value_changes(*, after: datetime, until: datetime) -> list[Value]:
    """The changes that take effect in ``(after, until]``, in time order."""
    return [
        Value(*row)
        for row in PointValue.objects.filter(valid_from__gt=after, valid_from__lte=until)
        .order_by("valid_from", "id")
        .values_list("value", "currency", "valid_from")
    ]


def money(points: int, value: Value) -> Decimal:
    """Exact (no rounding): the reports add these up and round only when they show them."""
    return Decimal(points) * value.value


def point_value_change(
    *, value: Decimal, valid_from: datetime, reason: str, actor, currency: str | None = None
) -> PointValue:
    """Record that one point is worth ``value`` from ``valid_from`` on (who, when, why).

    A change never rewrites the past: it is a new row, and one starting inside a closed period
    is refused (``ledger.finance.closing``), so a closed report keeps its figures.
    """
    from ledger.finance.closing import closed_through

    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired(fields={"reason": _("A reason is required.")})
    if value < 0:
        raise DomainError(_("The value of a point cannot be negative."), code="invalid_rate")
    limit = closed_through()
    if limit is not None and valid_from <= limit:
        raise PeriodClosed()
    with transaction.atomic():
        if PointValue.objects.filter(valid_from=valid_from).exists():
            raise DomainError(_("A value already starts at this moment."), code="invalid_field")
        return PointValue.objects.create(
            valid_from=valid_from,
            value=value,
            currency=(currency or settings.LOYALTY_CURRENCY).upper(),
            reason=reason,
            recorded_by=actor,
        )
