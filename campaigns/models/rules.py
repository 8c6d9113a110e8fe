"""The programme's rules as data: earning rules, engagement, referrals, challenges, abuse guard.

Marketing edits these in the admin; `campaigns.services` applies them. Counters that concurrent
requests move (a rule's spent budget, a challenge's progress) are changed only under a row lock
or by a conditional UPDATE, and a CHECK constraint refuses any overspend that slips past.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import Exact
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns import conditions, engine
from campaigns.models.campaigns import Campaign
from ledger.models import Purchase
from members.models import Member, Tier


class Period(models.TextChoices):
    DAY = "day", _("Day")
    WEEK = "week", _("Week")
    MONTH = "month", _("Month")
    YEAR = "year", _("Year")
    EVER = "ever", _("Ever")


class JSONTypeOf(models.Func):
    """The JSON type of a value ("array", "object", ...), for CHECK constraints on both backends."""

    function = "jsonb_typeof"
    output_field = models.CharField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return super().as_sql(compiler, connection, function="json_type", **extra_context)


def _is_list(field: str) -> models.CheckConstraint:
    # The database can tell a list from an object; what the items are is left to the validators.
    return models.CheckConstraint(
        condition=Exact(JSONTypeOf(field), "array"),
        name=f"earningrule_{field}_is_list",
        violation_error_message=_("A condition must be a list."),
    )


class EarningRule(models.Model):
    class Kind(models.TextChoices):
        RATE = engine.RATE, _("Points per currency unit")
        MULTIPLIER = engine.MULTIPLIER, _("Multiplier on the base rate")
        BONUS = engine.BONUS, _("Fixed bonus")

    class Rounding(models.TextChoices):
        DOWN = engine.ROUND_DOWN, _("Down")
        HALF_UP = engine.ROUND_HALF, _("Half up")
        UP = engine.ROUND_UP, _("Up")

    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.RATE)
    rate = models.DecimalField(
        _("points per currency unit"), max_digits=9, decimal_places=4, default=0
    )
    multiplier = models.DecimalField(_("multiplier"), max_digits=6, decimal_places=2, default=1)
    bonus_points = models.PositiveIntegerField(_("bonus points"), default=0)
    rounding = models.CharField(
        _("rounding"), max_length=8, choices=Rounding.choices, default=Rounding.DOWN
    )
    # Conditions: an empty list means "any".
    skus = models.JSONField(
        _("SKUs"), default=list, blank=True, validators=[conditions.validate_names]
    )
    categories = models.JSONField(
        _("categories"), default=list, blank=True, validators=[conditions.validate_names]
    )
    stores = models.JSONField(
        _("stores"), default=list, blank=True, validators=[conditions.validate_names]
    )
    channels = models.JSONField(
        _("channels"), default=list, blank=True, validators=[conditions.validate_names]
    )
    tiers = models.ManyToManyField(
        Tier, blank=True, related_name="+", verbose_name=_("tiers"), help_text=_("Empty: any.")
    )
    segments = models.ManyToManyField(
        "campaigns.Segment",
        blank=True,
        related_name="earning_rules",
        verbose_name=_("segments"),
        help_text=_("Only members of one of these segments, judged at the purchase. Empty: any."),
    )
    days_of_week = models.JSONField(
        _("days of week"),
        default=list,
        blank=True,
        help_text=_("0 = Monday … 6 = Sunday"),
        validators=[conditions.validate_weekdays],
    )
    time_from = models.TimeField(_("from time of day"), null=True, blank=True)
    time_until = models.TimeField(_("until time of day"), null=True, blank=True)
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    min_spend = models.DecimalField(
        _("minimum spend"), max_digits=12, decimal_places=2, null=True, blank=True
    )
    first_purchase_only = models.BooleanField(_("first purchase only"), default=False)
    birthday = models.BooleanField(_("on the member's birthday"), default=False)
    anniversary = models.BooleanField(_("on the membership anniversary"), default=False)
    # Caps.
    cap_per_purchase = models.PositiveIntegerField(_("cap per purchase"), null=True, blank=True)
    cap_per_member = models.PositiveIntegerField(
        _("cap per member per period"), null=True, blank=True
    )
    cap_period = models.CharField(
        _("cap period"), max_length=8, choices=Period.choices, default=Period.MONTH
    )
    budget_points = models.PositiveBigIntegerField(
        _("total budget (points)"), null=True, blank=True
    )
    budget_spent = models.PositiveBigIntegerField(_("budget spent (points)"), default=0)
    priority = models.IntegerField(_("priority"), default=0, help_text=_("Higher wins."))
    stacks = models.BooleanField(
        _("stacks with other rules"),
        default=True,
        help_text=_("Of the matching rules that do not stack, only the highest priority applies."),
    )
    # A campaign's rule applies only while its campaign is active and in its period, and only
    # to the campaign's treated audience (campaigns.selectors.rule_spec).
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="rules",
        verbose_name=_("campaign"),
        help_text=_("Empty: a rule of the programme, for every member."),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["-priority", "id"]
        permissions = [("simulate_earningrule", _("Can simulate earning rules on past data"))]
        constraints = [
            models.CheckConstraint(
                condition=Q(budget_points__isnull=True) | Q(budget_spent__lte=F("budget_points")),
                name="earningrule_budget_not_overspent",
                violation_error_message=_("The budget cannot be less than the points spent."),
            ),
            models.CheckConstraint(
                condition=Q(rate__gte=0),
                name="earningrule_rate_gte_0",
                violation_error_message=_("The rate cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(multiplier__gte=1),
                name="earningrule_multiplier_gte_1",
                violation_error_message=_("The multiplier must be at least 1."),
            ),
            # The engine reads these with a lookup table: an unknown value would skip the rule.
            models.CheckConstraint(
                condition=Q(kind__in=[engine.RATE, engine.MULTIPLIER, engine.BONUS]),
                name="earningrule_kind_valid",
                violation_error_message=_("Choose a valid kind."),
            ),
            models.CheckConstraint(
                condition=Q(rounding__in=[engine.ROUND_DOWN, engine.ROUND_HALF, engine.ROUND_UP]),
                name="earningrule_rounding_valid",
                violation_error_message=_("Choose a valid rounding."),
            ),
            models.CheckConstraint(
                condition=Q(cap_period__in=Period.values),
                name="earningrule_cap_period_valid",
                violation_error_message=_("Choose a valid cap period."),
            ),
            _is_list("skus"),
            _is_list("categories"),
            _is_list("stores"),
            _is_list("channels"),
            _is_list("days_of_week"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": _("The end must be after the start.")})
        # From 22:00 until 02:00 spans midnight (engine._in_window); from and until the same
        # time is a window of no minutes, a rule that would never apply.
        if self.time_from is not None and self.time_from == self.time_until:
            raise ValidationError(
                {"time_until": _("The time window is empty: choose an end other than its start.")}
            )


class EarningAward(models.Model):
    """What one rule gave one member on one purchase: feeds per-member caps and reports."""

    # No index of its own: award_rule_purchase starts with it.
    rule = models.ForeignKey(
        EarningRule,
        on_delete=models.PROTECT,
        related_name="awards",
        verbose_name=_("rule"),
        db_index=False,
    )
    # No index of its own: award_member_time starts with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("member"),
        db_index=False,
    )
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, related_name="+", verbose_name=_("purchase")
    )
    points = models.PositiveIntegerField(_("points"))
    occurred_at = models.DateTimeField(_("occurred at"))

    class Meta:
        verbose_name = _("earning award")
        verbose_name_plural = _("earning awards")
        indexes = [
            models.Index(fields=["rule", "member", "occurred_at"], name="award_rule_member_time"),
            # The points-per-day guard sums a member's awards over all rules.
            models.Index(fields=["member", "occurred_at"], name="award_member_time"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "purchase"],
                name="award_rule_purchase",
                violation_error_message=_("This rule has already given points for this purchase."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule}: {self.points}"


class PurchasePoints(models.Model):
    """The points a purchase earned and how many of them returns took back so far.

    Returns take back in proportion to everything returned so far, never more than was earned:
    the CHECK constraint holds that even if two returns race past the purchase lock.
    """

    purchase = models.OneToOneField(
        Purchase, on_delete=models.PROTECT, related_name="points_record", verbose_name=_("purchase")
    )
    points = models.PositiveIntegerField(_("points earned"))
    points_reversed = models.PositiveIntegerField(_("points taken back"), default=0)

    class Meta:
        verbose_name = _("purchase points")
        verbose_name_plural = _("purchase points")
        constraints = [
            models.CheckConstraint(
                condition=Q(points_reversed__lte=F("points")),
                name="purchasepoints_not_over_reversed",
                violation_error_message=_(
                    "Returns cannot take back more points than the purchase earned."
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.purchase}: {self.points} (-{self.points_reversed})"


class PurchaseReview(models.Model):
    """A purchase the abuse guard stopped: its points wait here until customer service decides."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    purchase = models.OneToOneField(
        Purchase, on_delete=models.PROTECT, related_name="review", verbose_name=_("purchase")
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="+", verbose_name=_("member")
    )
    reason = models.CharField(_("reason"), max_length=255)
    points = models.PositiveIntegerField(_("points held"))
    explanation = models.JSONField(_("explanation"), default=list, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("purchase review")
        verbose_name_plural = _("purchase reviews")
        ordering = ["created_at"]
        indexes = [models.Index(fields=["status", "created_at"], name="review_queue")]

    def __str__(self) -> str:
        return f"{self.purchase} ({self.get_status_display()})"


class AbuseRule(models.Model):
    class Kind(models.TextChoices):
        MEMBER_VELOCITY = "member_velocity", _("Purchases per member per hour")
        CARD_VELOCITY = "card_velocity", _("Purchases per card per hour")
        STORE_VELOCITY = "store_velocity", _("Purchases per store per member per hour")
        POINTS_PER_DAY = "points_per_day", _("Points per member per day")
        ABOVE_NORM = "above_norm", _("Purchase amount times the member's average")
        NEW_CARDS = "new_cards", _("New members' purchases per store per day")
        REFERRALS = "referrals", _("Referrals per referrer per day")

    kind = models.CharField(_("kind"), max_length=24, choices=Kind.choices)
    threshold = models.DecimalField(
        _("threshold"),
        max_digits=12,
        decimal_places=2,
        help_text=_("Trips when the count, points or factor goes above this value."),
    )
    min_history = models.PositiveIntegerField(
        _("minimum history"),
        default=5,
        help_text=_("Above-norm only: purchases the member needs before their norm counts."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("abuse rule")
        verbose_name_plural = _("abuse rules")

    def __str__(self) -> str:
        return f"{self.get_kind_display()} > {self.threshold}"
