"""What finance's reports need beyond the entries: which lots each debit consumed.

A lot's ``remaining`` is only its state now; a report of a past date needs to know what each lot
held then. Every debit (redeem, expiry, transfer out, negative adjustment or reverse) writes one
``LotConsumption`` per lot it took points from, in the same transaction as the entry, and an earn
that pays back a debt writes one on its own new lot for the part the debt took. So for every lot
and every moment ``t``::

    remaining(t) = points - sum(consumption.points for consumptions dated <= t)

and ``remaining(now) == lot.remaining`` (``ledger.finance.checks`` reconciles it). Like entries,
consumptions are append-only: a trigger refuses UPDATE and DELETE (migration 0012).
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class LotConsumption(models.Model):
    entry = models.ForeignKey(
        "ledger.Entry",
        on_delete=models.PROTECT,
        related_name="consumptions",
        verbose_name=_("entry"),
        db_index=False,  # consumption_entry starts with it.
    )
    lot = models.ForeignKey(
        "ledger.Lot",
        on_delete=models.PROTECT,
        related_name="consumptions",
        verbose_name=_("lot"),
        db_index=False,  # consumption_lot_at starts with it.
    )
    points = models.BigIntegerField(_("points"))
    # The entry's created_at, copied so that "as of" sums need no join to the entries.
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("lot consumption")
        verbose_name_plural = _("lot consumptions")
        indexes = [
            models.Index(fields=["lot", "at"], name="consumption_lot_at"),
            models.Index(fields=["entry"], name="consumption_entry"),
            models.Index(fields=["at"], name="consumption_at"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gt=0),
                name="consumption_points_gt_0",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points} ({self.lot_id})"


class PointValue(models.Model):
    """The money value of one point from ``valid_from`` on; before the first row the setting
    ``LOYALTY_POINT_VALUE`` applies. Rows are only added: a change is a new row, so every past
    report keeps the value it was made with."""

    valid_from = models.DateTimeField(_("valid from"))
    value = models.DecimalField(_("value of one point"), max_digits=12, decimal_places=6)
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.CharField(_("reason"), max_length=255)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        verbose_name = _("point value")
        verbose_name_plural = _("point values")
        ordering = ["-valid_from", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["valid_from"],
                name="pointvalue_valid_from_unique",
                violation_error_message=_("A value already starts at this moment."),
            ),
            models.CheckConstraint(
                condition=Q(value__gte=0),
                name="pointvalue_value_gte_0",
                violation_error_message=_("The value of a point cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.value} {self.currency}"
