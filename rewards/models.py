"""The rewards catalogue, voucher code pools and redemptions.

Stock, code hand-out and the redemption life cycle are guarded by the database: a CHECK keeps
stock from going negative (services decrement it with a conditional UPDATE), a code belongs to at
most one redemption (one-to-one), and points move only through ledger holds and entries.
"""

from django.core.validators import FileExtensionValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class ChannelKind(models.TextChoices):
    POS = "pos", _("Till (POS)")
    WEBSHOP = "webshop", _("Webshop")
    APP = "app", _("App")
    PARTNER = "partner", _("Partner")


def _dutch() -> bool:
    return (get_language() or "").startswith("nl")


class Reward(models.Model):
    class Kind(models.TextChoices):
        VOUCHER = "voucher", _("Voucher or discount code")
        PRODUCT = "product", _("Physical product")
        DONATION = "donation", _("Donation to a charity")
        PARTNER = "partner", _("Partner reward")

    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    name_en = models.CharField(_("name (English)"), max_length=120)
    name_nl = models.CharField(
        _("name (Dutch)"), max_length=120, blank=True, help_text=_("Empty: the English name.")
    )
    description_en = models.TextField(_("description (English)"), blank=True)
    description_nl = models.TextField(
        _("description (Dutch)"), blank=True, help_text=_("Empty: the English description.")
    )
    # A plain file field: Pillow (needed by ImageField) is not a dependency of the project.
    image = models.FileField(
        _("image"),
        upload_to="rewards/",
        blank=True,
        validators=[FileExtensionValidator(["jpg", "jpeg", "png", "webp", "gif"])],
    )
    image_url = models.URLField(
        _("image URL"), blank=True, help_text=_("Used when no image file is uploaded.")
    )
    points = models.PositiveIntegerField(
        _("points cost"),
        validators=[MinValueValidator(1)],
        help_text=_("Unless a tier price applies."),
    )
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    stock = models.PositiveIntegerField(
        _("stock"), null=True, blank=True, help_text=_("Empty: unlimited.")
    )
    limit_per_member = models.PositiveIntegerField(
        _("limit per member"),
        null=True,
        blank=True,
        help_text=_("How often one member may redeem it (reserved or confirmed). Empty: no limit."),
    )
    visible_tiers = models.ManyToManyField(
        "members.Tier",
        blank=True,
        related_name="+",
        verbose_name=_("visible to tiers"),
        help_text=_("None selected: every tier."),
    )
    channels = models.JSONField(
        _("channels"),
        default=list,
        blank=True,
        help_text=_("Channel kinds that offer it. Empty: every channel."),
    )
    sort_order = models.IntegerField(_("sort order"), default=0)
    active = models.BooleanField(_("active"), default=True)
    # Set by marketing for a reward that only an offer campaign hands out: the catalogue hides
    # it and a redemption needs the caller's word that a campaign offers it to the member (the
    # `offered` argument of the redemption services; rewards cannot ask campaigns itself).
    offer_only = models.BooleanField(
        _("only as a campaign offer"),
        default=False,
        help_text=_(
            "Hidden from the catalogue; only members an active offer campaign offers it to may "
            "redeem it."
        ),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["sort_order", "points", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points__gt=0),
                name="reward_points_positive",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
            models.CheckConstraint(
                condition=models.Q(stock__isnull=True) | models.Q(stock__gte=0),
                name="reward_stock_not_negative",
                violation_error_message=_("The stock cannot be negative."),
            ),
            models.CheckConstraint(
                condition=models.Q(valid_from__isnull=True)
                | models.Q(valid_until__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="reward_validity_ordered",
                violation_error_message=_("The end of the validity must be after its start."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def name(self) -> str:
        return self.name_nl if _dutch() and self.name_nl else self.name_en

    @property
    def description(self) -> str:
        return self.description_nl if _dutch() and self.description_nl else self.description_en

    @property
    def image_src(self) -> str:
        return self.image.url if self.image else self.image_url

    @property
    def gives_code(self) -> bool:
        return self.kind == self.Kind.VOUCHER

    @property
    def ships(self) -> bool:
        return self.kind == self.Kind.PRODUCT

    def is_valid_at(self, now) -> bool:
        return (self.valid_from is None or self.valid_from <= now) and (
            self.valid_until is None or now < self.valid_until
        )


class RewardTierPrice(models.Model):
    # No index of its own: reward_tier_price_unique starts with it.
    reward = models.ForeignKey(
        Reward,
        on_delete=models.CASCADE,
        related_name="tier_prices",
        verbose_name=_("reward"),
        db_index=False,
    )
    tier = models.ForeignKey(
        "members.Tier", on_delete=models.CASCADE, related_name="+", verbose_name=_("tier")
    )
    points = models.PositiveIntegerField(_("points cost"), validators=[MinValueValidator(1)])

    class Meta:
        verbose_name = _("tier price")
        verbose_name_plural = _("tier prices")
        constraints = [
            models.UniqueConstraint(
                fields=["reward", "tier"],
                name="reward_tier_price_unique",
                violation_error_message=_("This reward already has a price for this tier."),
            ),
            models.CheckConstraint(
                condition=models.Q(points__gt=0),
                name="reward_tier_price_points_positive",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tier}: {self.points}"


class Redemption(models.Model):
    class Status(models.TextChoices):
        RESERVED = "reserved", _("Reserved")
        CONFIRMED = "confirmed", _("Confirmed")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    class FulfilmentStatus(models.TextChoices):
        NONE = "", _("Nothing to ship")
        TO_SHIP = "to_ship", _("To ship")
        SHIPPED = "shipped", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        RETURNED = "returned", _("Returned")

    # No index of its own: redemption_limit_idx starts with it.
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        related_name="redemptions",
        verbose_name=_("member"),
        db_index=False,
    )
    reward = models.ForeignKey(
        Reward,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redemptions",
        verbose_name=_("reward"),
        help_text=_("Empty: points paid as a discount."),
    )
    points = models.PositiveIntegerField(_("points"))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    hold = models.OneToOneField(
        "ledger.Hold",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redemption",
        verbose_name=_("points hold"),
    )
    entry = models.OneToOneField(
        "ledger.Entry",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="redemption",
        verbose_name=_("ledger entry"),
    )
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    discount_amount = models.DecimalField(
        _("discount"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    reserved_until = models.DateTimeField(_("reserved until"), null=True, blank=True)
    confirmed_at = models.DateTimeField(_("confirmed at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("cancelled or expired at"), null=True, blank=True)
    fulfilment_status = models.CharField(
        _("fulfilment"), max_length=16, choices=FulfilmentStatus.choices, blank=True, default=""
    )
    fulfilment_updated_at = models.DateTimeField(_("fulfilment updated at"), null=True, blank=True)
    shipping_address = models.TextField(_("shipping address"), blank=True)
    tracking_code = models.CharField(_("tracking code"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "reserved_until"], name="redemption_expiry_idx"),
            models.Index(fields=["member", "reward", "status"], name="redemption_limit_idx"),
            models.Index(
                fields=["fulfilment_status", "created_at"],
                name="redemption_fulfilment_idx",
                condition=~models.Q(fulfilment_status=""),
            ),
            # The dashboard's day: its confirmed redemptions, by reward.
            models.Index(
                fields=["confirmed_at"],
                name="redemption_confirmed",
                condition=models.Q(confirmed_at__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points__gt=0),
                name="redemption_points_positive",
                violation_error_message=_("The number of points must be a positive whole number."),
            ),
            models.CheckConstraint(
                condition=~models.Q(status="reserved")
                | (models.Q(reserved_until__isnull=False) & models.Q(hold__isnull=False)),
                name="redemption_reserved_has_hold",
                violation_error_message=_(
                    "A reserved redemption needs its hold and a reservation end."
                ),
            ),
            models.CheckConstraint(
                condition=~models.Q(status="confirmed") | models.Q(entry__isnull=False),
                name="redemption_confirmed_has_entry",
                violation_error_message=_("A confirmed redemption must have its entry."),
            ),
        ]

    def __str__(self) -> str:
        what = self.reward.name if self.reward_id else _("points")
        return f"#{self.pk} {what} ({self.points})"


class Fulfilment(Redemption):
    """The shipping view of redemptions of physical rewards, with its own permissions."""

    class Meta:
        proxy = True
        verbose_name = _("fulfilment")
        verbose_name_plural = _("fulfilment")


class VoucherCode(models.Model):
    class Status(models.TextChoices):
        UNUSED = "unused", _("Unused")
        ISSUED = "issued", _("Issued")
        USED = "used", _("Used")
        EXPIRED = "expired", _("Expired")

    code = models.CharField(_("code"), max_length=64, unique=True)
    reward = models.ForeignKey(
        Reward, on_delete=models.PROTECT, related_name="codes", verbose_name=_("reward")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.UNUSED
    )
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    redemption = models.OneToOneField(
        Redemption,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="voucher_code",
        verbose_name=_("issued with redemption"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    issued_at = models.DateTimeField(_("issued at"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    used_channel = models.CharField(_("used in channel"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("voucher code")
        verbose_name_plural = _("voucher codes")
        indexes = [
            # The hand-out query: the next unused code of a reward.
            models.Index(
                fields=["reward", "expires_at", "id"],
                name="vouchercode_pool_idx",
                condition=models.Q(status="unused"),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(status__in=["issued", "used"])
                | models.Q(redemption__isnull=False),
                name="vouchercode_issued_has_redemption",
                violation_error_message=_(
                    "An issued or used voucher code must belong to a redemption."
                ),
            ),
            models.CheckConstraint(
                condition=~models.Q(status="unused") | models.Q(redemption__isnull=True),
                name="vouchercode_unused_has_no_redemption",
                violation_error_message=_("An unused voucher code cannot belong to a redemption."),
            ),
        ]

    def __str__(self) -> str:
        return self.code
