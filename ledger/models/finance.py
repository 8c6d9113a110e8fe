"""What finance's reports need beyond the entries: which lots each debit consumed, and when
pending points were cancelled.

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


class PendingCancellation(models.Model):
    """Pending points taken back (a return inside the return window): how many, and when.

    ``ledger.services.lifecycle.pending_cancel`` writes one per cancellation, in its
    transaction. A partial cancellation shrinks the ``PendingEarn`` row in place, and a full one
    leaves its points as they were just before, so the row alone cannot say what was pending at
    a past moment; with these rows it is exact (``ledger.finance.liability.pending_at``)::

        pending(t) = points now (0 if cancelled) + cancellations of it dated after t

    for every row created at or before ``t`` and not matured by then. Append-only like the
    entries (a trigger, migration 0019).
    """

    pending = models.ForeignKey(
        "ledger.PendingEarn",
        on_delete=models.PROTECT,
        related_name="cancellations",
        verbose_name=_("pending points"),
    )
    points = models.BigIntegerField(_("points"))
    at = models.DateTimeField(_("at"), default=timezone.now)

    class Meta:
        verbose_name = _("pending points cancellation")
        verbose_name_plural = _("pending points cancellations")
        indexes = [models.Index(fields=["at"], name="pending_cancellation_at")]
        constraints = [
            models.CheckConstraint(
                condition=Q(points__gt=0),
                name="pending_cancellation_points_gt_0",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.points} ({self.pending_id})"


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


class PeriodClose(models.Model):
    """A month finance has closed: its figures as stored and signed off then. Later entries
    dated in it are refused or moved into the open period (``LOYALTY_FINANCE_CLOSED_PERIOD``),
    so the stored figures stay what the ledger says."""

    month = models.DateField(_("month"), unique=True)  # the first day of the month
    closed_at = models.DateTimeField(_("closed at"), default=timezone.now)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("closed by"),
    )
    note = models.CharField(_("note"), max_length=255, blank=True)
    figures = models.JSONField(_("closing figures"), default=dict)

    class Meta:
        verbose_name = _("closed period")
        verbose_name_plural = _("closed periods")
        ordering = ["-month"]
        permissions = [
            ("view_finance", _("Can see the finance reports and exports")),
            ("close_period", _("Can close a finance period")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(month__day=1),
                name="periodclose_month_first_day",
                violation_error_message=_("A closed period is a calendar month."),
            ),
        ]

    def __str__(self) -> str:
        return self.month.strftime("%Y-%m")


class RedemptionEstimate(models.Model):
    """Finance's estimate of the share of issued points that will be redeemed, from
    ``valid_from`` on (before the first, ``LOYALTY_FINANCE_EXPECTED_REDEMPTION``). Deferred
    revenue uses the estimate in force at each period's end; a change is a catch-up."""

    valid_from = models.DateTimeField(_("valid from"))
    rate = models.DecimalField(_("expected redemption rate"), max_digits=5, decimal_places=4)
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
        verbose_name = _("redemption estimate")
        verbose_name_plural = _("redemption estimates")
        ordering = ["-valid_from", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rate__gt=0) & Q(rate__lte=1),
                name="estimate_rate_between_0_and_1",
                violation_error_message=_("The rate must be above 0 and at most 1."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rate}"


class ReconciliationRun(models.Model):
    """One check of every account (``ledger_reconcile``: nightly, from the finance page or the
    command): when, who or what started it, how many accounts it checked and which did not
    reconcile (the first ``SAMPLE`` of them kept). The run is chunked; each chunk adds its
    figures under this row's lock (``ledger.finance.reconciliation``), and the run is finished
    when every chunk has reported."""

    SAMPLE = 100

    class Trigger(models.TextChoices):
        NIGHTLY = "nightly", _("Nightly job")
        PAGE = "page", _("Run now (finance page)")
        COMMAND = "command", _("Command")

    trigger = models.CharField(_("started by"), max_length=16, choices=Trigger.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
    )
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    accounts = models.PositiveBigIntegerField(_("accounts to check"), default=0)
    checked = models.PositiveBigIntegerField(_("accounts checked"), default=0)
    chunks = models.PositiveIntegerField(_("chunks"), default=0)
    # The first account id of each chunk that reported: a chunk delivered twice counts once.
    chunks_done = models.JSONField(_("chunks done"), default=list, blank=True)
    mismatch_count = models.PositiveBigIntegerField(_("mismatches"), default=0)
    # [{"account": id, "member": public id, "problems": [...]}], the first SAMPLE by account id.
    mismatches = models.JSONField(_("first mismatches"), default=list, blank=True)

    class Meta:
        verbose_name = _("reconciliation run")
        verbose_name_plural = _("reconciliation runs")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-started_at", "-id"], name="reconciliation_recent")]

    def __str__(self) -> str:
        return f"{self.get_trigger_display()} {self.started_at:%Y-%m-%d %H:%M}"

    @property
    def finished(self) -> bool:
        return self.finished_at is not None
