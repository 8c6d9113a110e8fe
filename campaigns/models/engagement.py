"""Engagement kinds and events, referrals, badges and challenges."""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models.rules import Period
from ledger.models import Purchase
from members.models import Member


class EngagementKind(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    points = models.PositiveIntegerField(_("points"), default=0)
    limit_count = models.PositiveIntegerField(
        _("limit per member"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    limit_period = models.CharField(
        _("limit period"), max_length=8, choices=Period.choices, default=Period.DAY
    )
    requires_approval = models.BooleanField(_("requires approval"), default=False)
    collects_nps = models.BooleanField(
        _("collects an NPS score"),
        default=False,
        help_text=_(
            'Each event of this kind carries the answer to "How likely are you to recommend '
            "us?\" (0–10) and keeps the member's latest score on their profile."
        ),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("engagement kind")
        verbose_name_plural = _("engagement kinds")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class EngagementEvent(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")
        CREDITED = "credited", _("Credited")

    # No index of its own: event_member_kind_time starts with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("member"),
        db_index=False,
    )
    kind = models.ForeignKey(
        EngagementKind, on_delete=models.PROTECT, related_name="events", verbose_name=_("kind")
    )
    reference = models.CharField(_("reference"), max_length=128, blank=True)
    channel = models.CharField(_("channel"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    points = models.PositiveIntegerField(_("points"), default=0)
    # Only on events of a kind that collects NPS, where the service requires it.
    score = models.PositiveSmallIntegerField(
        _("NPS score"),
        null=True,
        blank=True,
        validators=[MinValueValidator(0), MaxValueValidator(10)],
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
        verbose_name = _("engagement event")
        verbose_name_plural = _("engagement events")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["member", "kind", "created_at"], name="event_member_kind_time"),
            models.Index(fields=["status", "created_at"], name="event_moderation"),
        ]
        constraints = [
            # The same review or survey answer is rewarded once, however often a channel sends it.
            models.UniqueConstraint(
                fields=["member", "kind", "reference"],
                condition=~Q(reference=""),
                name="event_member_kind_reference",
                violation_error_message=_("This event was already recorded."),
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=10),
                name="event_score_range",
                violation_error_message=_("An NPS score is a whole number from 0 to 10."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.get_status_display()})"


class ReferralCode(models.Model):
    member = models.OneToOneField(
        Member, on_delete=models.PROTECT, related_name="referral_code", verbose_name=_("member")
    )
    code = models.CharField(_("code"), max_length=16, unique=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("referral code")
        verbose_name_plural = _("referral codes")

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    referrer = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="referrals_made", verbose_name=_("referrer")
    )
    # One referrer per member: a second code cannot claim the same newcomer.
    referred = models.OneToOneField(
        Member, on_delete=models.PROTECT, related_name="referred_by", verbose_name=_("referred")
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    rewarded_at = models.DateTimeField(_("rewarded at"), null=True, blank=True)
    purchase = models.OneToOneField(
        Purchase,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("first purchase"),
    )

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        constraints = [
            models.CheckConstraint(
                condition=~Q(referrer=F("referred")),
                name="referral_not_self",
                violation_error_message=_("A member cannot refer themselves."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.referrer} → {self.referred}"


class Badge(models.Model):
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)

    class Meta:
        verbose_name = _("badge")
        verbose_name_plural = _("badges")

    def __str__(self) -> str:
        return self.name


class MemberBadge(models.Model):
    # No index of its own: memberbadge_once starts with it.
    member = models.ForeignKey(
        Member,
        on_delete=models.PROTECT,
        related_name="badges",
        verbose_name=_("member"),
        db_index=False,
    )
    badge = models.ForeignKey(
        Badge, on_delete=models.PROTECT, related_name="holders", verbose_name=_("badge")
    )
    awarded_at = models.DateTimeField(_("awarded at"), default=timezone.now)

    class Meta:
        verbose_name = _("member badge")
        verbose_name_plural = _("member badges")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "badge"],
                name="memberbadge_once",
                violation_error_message=_("This member already has this badge."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.member}: {self.badge}"


class Challenge(models.Model):
    class Goal(models.TextChoices):
        PURCHASE_COUNT = "purchase_count", _("Number of purchases")
        SPEND = "spend", _("Spend (optionally in one category)")
        EVENT_COUNT = "event_count", _("Number of engagement events")

    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    active = models.BooleanField(_("active"), default=True)
    goal = models.CharField(_("goal"), max_length=16, choices=Goal.choices)
    target = models.DecimalField(_("target"), max_digits=12, decimal_places=2)
    category = models.CharField(_("category"), max_length=64, blank=True)
    event_kind = models.ForeignKey(
        EngagementKind,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("engagement kind"),
    )
    starts_at = models.DateTimeField(_("starts at"), null=True, blank=True)
    ends_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    window_days = models.PositiveIntegerField(
        _("window (days)"),
        null=True,
        blank=True,
        help_text=_("Progress must be made within this many days of the first step; empty: any."),
    )
    reward_points = models.PositiveIntegerField(_("reward points"), default=0)
    badge = models.ForeignKey(
        Badge,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reward badge"),
    )

    class Meta:
        verbose_name = _("challenge")
        verbose_name_plural = _("challenges")

    def __str__(self) -> str:
        return self.name


class ChallengeProgress(models.Model):
    # No index of its own: progress_once starts with it.
    challenge = models.ForeignKey(
        Challenge,
        on_delete=models.PROTECT,
        related_name="progress",
        verbose_name=_("challenge"),
        db_index=False,
    )
    member = models.ForeignKey(
        Member, on_delete=models.PROTECT, related_name="challenges", verbose_name=_("member")
    )
    value = models.DecimalField(_("progress"), max_digits=12, decimal_places=2, default=0)
    window_start = models.DateTimeField(_("window start"))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("challenge progress")
        verbose_name_plural = _("challenge progress")
        constraints = [
            models.UniqueConstraint(
                fields=["challenge", "member"],
                name="progress_once",
                violation_error_message=_("This member already has progress on this challenge."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.challenge}: {self.value}"
