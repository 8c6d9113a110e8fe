"""Purchases, their lines and returns: the records that move points."""

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import Member


class Purchase(models.Model):
    class Status(models.TextChoices):
        RECORDED = "recorded", _("Recorded")
        UNDER_REVIEW = "under_review", _("Under review")
        REJECTED = "rejected", _("Rejected")

    # No index of its own: purchase_member_window starts with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="purchases",
        verbose_name=_("member"),
        db_index=False,
    )
    # The card presented at the till, when the purchase came in by card number (abuse guard).
    card = models.ForeignKey(
        "members.Card",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="purchases",
        verbose_name=_("card"),
    )
    channel = models.CharField(_("channel"), max_length=64)
    store = models.CharField(_("store"), max_length=64, blank=True)
    external_id = models.CharField(_("external id"), max_length=128)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.RECORDED
    )

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        indexes = [
            # A member's purchases by time; with the status and id in it, a segment's "bought
            # in a window" probes a member's purchases (and joins their lines) from the index
            # alone, without reading the table.
            models.Index(
                fields=["member", "-occurred_at"],
                include=["status", "id"],
                name="purchase_member_window",
            ),
            # The dashboard's day (its purchases, revenue and active members) and a segment's
            # window: who bought in it, from the index alone.
            models.Index(
                fields=["occurred_at"],
                include=["member", "status"],
                name="purchase_occurred_member",
            ),
            models.Index(
                fields=["card", "-occurred_at"],
                name="purchase_card_recent",
                condition=models.Q(card__isnull=False),
            ),
            # The admin's status filter, newest first: the purchases under review or rejected
            # are few, and a page of them was a scan of every purchase. Partial: a recorded
            # purchase (the hot insert) writes nothing here.
            models.Index(
                fields=["status", "-id"],
                name="purchase_status_rare",
                condition=~models.Q(status="recorded"),
            ),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "external_id"],
                name="purchase_channel_external_id",
                violation_error_message=_("This purchase was recorded already."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel}:{self.external_id}"


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(
        Purchase, on_delete=models.CASCADE, related_name="lines", verbose_name=_("purchase")
    )
    sku = models.CharField(_("SKU"), max_length=64, blank=True)
    category = models.CharField(_("category"), max_length=64, blank=True)
    quantity = models.IntegerField(_("quantity"), default=1)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")
        indexes = [
            # A segment's "bought a category": that category's lines of one purchase, or all of
            # them, from the index alone.
            models.Index(fields=["category", "purchase"], name="purchaseline_category"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="purchaseline_quantity_gt_0",
                violation_error_message=_("The quantity must be at least 1."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.sku}"


class Return(models.Model):
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, related_name="returns", verbose_name=_("purchase")
    )
    external_id = models.CharField(_("external id"), max_length=128, blank=True)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("return")
        verbose_name_plural = _("returns")
        constraints = [
            models.UniqueConstraint(
                fields=["purchase", "external_id"],
                condition=~Q(external_id=""),
                name="return_purchase_external_id",
                violation_error_message=_("This return was recorded already."),
            ),
            models.CheckConstraint(
                condition=Q(amount__gte=0),
                name="return_amount_gte_0",
                violation_error_message=_("The amount cannot be negative."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purchase} − {self.amount}"


class ReturnLine(models.Model):
    return_record = models.ForeignKey(
        Return, on_delete=models.CASCADE, related_name="lines", verbose_name=_("return")
    )
    line = models.ForeignKey(
        PurchaseLine,
        on_delete=models.PROTECT,
        related_name="return_lines",
        verbose_name=_("purchase line"),
    )
    quantity = models.IntegerField(_("quantity"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("return line")
        verbose_name_plural = _("return lines")
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="returnline_quantity_gt_0",
                violation_error_message=_("The quantity must be at least 1."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.line_id}"
