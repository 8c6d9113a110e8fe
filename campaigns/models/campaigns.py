"""Campaigns: an earning rule, a personalised offer or a message for a segment, over a period,
with a control group that gets nothing, so its results can be measured against it.

Only a draft is freely edited; the status moves draft → scheduled → active ⇄ paused → ended →
archived, each transition by one service that audits who and when (`CampaignTransition`) and
refuses the others. When a campaign starts its audience is frozen (`audience`, a segment
snapshot); the control group is computed from the campaign's salt (campaigns.control), so it is
the same on every run and after the campaign has ended.
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns import control
from campaigns.models.segments import Segment, SegmentSnapshot


class Campaign(models.Model):
    class Kind(models.TextChoices):
        EARNING = "earning", _("Earning (bonus points or multiplier)")
        OFFER = "offer", _("Personalised offer")
        MESSAGE = "message", _("Message")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        ACTIVE = "active", _("Active")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")
        ARCHIVED = "archived", _("Archived")

    class CapPeriod(models.TextChoices):
        LIFETIME = "lifetime", _("Campaign lifetime")
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")

    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.DRAFT
    )
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("segment"),
        help_text=_("Empty: every member."),
    )
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    control_basis_points = models.PositiveSmallIntegerField(
        _("control group (basis points)"),
        default=1000,
        help_text=_("Share of the audience held out, in 1/10,000: 1000 is 10 %."),
    )
    salt = models.PositiveBigIntegerField(_("salt"), default=control.salt_new, editable=False)
    frequency_capped = models.BooleanField(
        _("frequency capped"),
        default=True,
        help_text=_("Off only for service messages, which the frequency caps do not limit."),
    )
    audience = models.OneToOneField(
        SegmentSnapshot,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaign",
        verbose_name=_("audience"),
        editable=False,
    )
    # Budget caps (earning campaigns): the points its rules may issue in all, their money value
    # at `point_value`, and per member per period. `points_spent` moves only by a conditional
    # UPDATE in campaigns.services.budgets; the CHECK constraints below refuse any overspend.
    budget_points = models.PositiveBigIntegerField(
        _("budget (points)"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    budget_money = models.DecimalField(
        _("budget (money)"),
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text=_("In the programme's currency, counted at the point value. Empty: no limit."),
    )
    member_cap_points = models.PositiveIntegerField(
        _("cap per member (points)"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    member_cap_period = models.CharField(
        _("cap period"), max_length=16, choices=CapPeriod.choices, default=CapPeriod.LIFETIME
    )
    # The money budget in whole points at `point_value`, fixed when scheduled (or the budget is
    # raised): the cap and its CHECK are then integer comparisons, exact on every database.
    budget_money_points = models.PositiveBigIntegerField(
        _("money budget in points"), null=True, blank=True, editable=False
    )
    points_spent = models.PositiveBigIntegerField(_("points spent"), default=0, editable=False)
    point_value = models.DecimalField(
        _("point value"),
        max_digits=12,
        decimal_places=6,
        default=Decimal(0),
        editable=False,
        help_text=_(
            "The money value of a point the money budget is counted at (set when scheduled)."
        ),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "starts_at"], name="campaign_status_start")]
        constraints = [
            models.CheckConstraint(
                condition=Q(control_basis_points__lte=control.BUCKETS // 2),
                name="campaign_control_at_most_half",
                violation_error_message=_("A control group holds at most half the audience."),
            ),
            models.CheckConstraint(
                condition=Q(salt__gte=1) & Q(salt__lt=control.PRIME),
                name="campaign_salt_in_range",
                violation_error_message=_("The campaign's salt is out of range."),
            ),
            models.CheckConstraint(
                condition=Q(starts_at__isnull=True)
                | Q(ends_at__isnull=True)
                | Q(ends_at__gt=F("starts_at")),
                name="campaign_ends_after_start",
                violation_error_message=_("A campaign must end after it starts."),
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(starts_at__isnull=False),
                name="campaign_scheduled_has_start",
                violation_error_message=_("A campaign needs a start before it is scheduled."),
            ),
            models.CheckConstraint(
                condition=Q(budget_points__isnull=True) | Q(points_spent__lte=F("budget_points")),
                name="campaign_budget_points_not_overspent",
                violation_error_message=_("The campaign cannot issue more points than its budget."),
            ),
            models.CheckConstraint(
                condition=Q(budget_money_points__isnull=True)
                | Q(points_spent__lte=F("budget_money_points")),
                name="campaign_budget_money_not_overspent",
                violation_error_message=_("The campaign cannot issue more than its money budget."),
            ),
            models.CheckConstraint(
                condition=Q(member_cap_period__in=["lifetime", "day", "week", "month"]),
                name="campaign_member_cap_period_valid",
                violation_error_message=_("Choose a valid cap period."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def money_spent(self) -> Decimal:
        return (Decimal(self.points_spent) * self.point_value).quantize(Decimal("0.01"))

    @property
    def budgeted(self) -> bool:
        return self.budget_points is not None or self.budget_money is not None

    def in_control_q(self, field: str = "pk") -> Q:
        """This campaign's control group, over member ids in `field`."""
        return control.in_control_q(salt=self.salt, share=self.control_basis_points, field=field)


class CampaignTransition(models.Model):
    """Every status change of a campaign: who, when, from and to, and why."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="transitions", verbose_name=_("campaign")
    )
    from_status = models.CharField(_("from"), max_length=16, choices=Campaign.Status.choices)
    to_status = models.CharField(_("to"), max_length=16, choices=Campaign.Status.choices)
    at = models.DateTimeField(_("at"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff user"),
        help_text=_("Empty: the scheduler."),
    )
    reason = models.CharField(_("reason"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("campaign transition")
        verbose_name_plural = _("campaign transitions")
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.from_status} → {self.to_status}"
