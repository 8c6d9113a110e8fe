"""Messages: a campaign's templates per channel and language, every planned message, and the
frequency caps that limit how often a member hears from the programme.

A `CampaignMessage` is planned once per (campaign, member, channel): the unique key is what
makes a send run twice, a chunk retried or a worker lost mid-chunk deliver at most once. Its
status moves planned → sending (claimed by one worker, with a lease) → sent or failed (retried
with back-off until LOYALTY_MESSAGE_MAX_ATTEMPTS) or suppressed (with the reason: control group,
no consent, unreachable, capped). See campaigns.services.sends for who moves it and under which
lock.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models.campaigns import Campaign


class Channel(models.TextChoices):
    EMAIL = "email", _("E-mail")
    SMS = "sms", _("SMS")
    PUSH = "push", _("Push notification")


class MessageTemplate(models.Model):
    """What a campaign says on one channel in one language, in Django's template language.

    Rendered in a restricted engine (campaigns.message_rendering) with only the variables
    listed in its help text: no template loading, no tags that reach beyond the values passed.
    """

    # No index of its own: messagetemplate_one_per_language starts with it.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="message_templates",
        verbose_name=_("campaign"),
        db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    language = models.CharField(
        _("language"), max_length=8, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    subject = models.CharField(
        _("subject"),
        max_length=200,
        blank=True,
        help_text=_("E-mail subject or push title; not used for SMS."),
    )
    body = models.TextField(
        _("body"),
        help_text=_(
            "Text with variables: {{ first_name }}, {{ balance }}, {{ tier }}, "
            "{{ points_expiring }}, {{ points_expiring_at|date:'j F Y' }}; "
            "{% if points_expiring %}…{% endif %}."
        ),
    )
    html_body = models.TextField(
        _("HTML body"),
        blank=True,
        help_text=_("E-mail only, optional: the same variables, HTML-escaped."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        ordering = ["campaign", "channel", "language"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "channel", "language"],
                name="messagetemplate_one_per_language",
                violation_error_message=_(
                    "This campaign has a template for this channel and language already."
                ),
            )
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.get_channel_display()} ({self.language})"

    def clean(self) -> None:
        from campaigns import message_rendering

        message_rendering.template_validate(self)


class CampaignMessage(models.Model):
    class Status(models.TextChoices):
        PLANNED = "planned", _("Planned")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SUPPRESSED = "suppressed", _("Suppressed")

    class Suppression(models.TextChoices):
        NONE = "", _("-")
        CONTROL = "control", _("Control group")
        NO_CONSENT = "no_consent", _("No consent")
        UNREACHABLE = "unreachable", _("Unreachable")
        CAPPED = "capped", _("Frequency cap")

    # No index of its own: campaignmessage_once starts with it.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.PROTECT,
        related_name="messages",
        verbose_name=_("campaign"),
        db_index=False,
    )
    # No index of its own: campaignmessage_cap starts with it.
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.PROTECT,
        related_name="campaign_messages",
        verbose_name=_("member"),
        db_index=False,
    )
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PLANNED
    )
    suppression = models.CharField(
        _("suppressed because"),
        max_length=16,
        choices=Suppression.choices,
        default=Suppression.NONE,
        blank=True,
    )
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    planned_at = models.DateTimeField(_("planned at"), default=timezone.now)
    # When the last claim took the cap slot; sending and sent messages count in the cap from here.
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    # A claim is the worker's until lease_until; past it another worker may take the message
    # over (it first asks the backend whether the message went out). lease_token tells the
    # holder's record from a late one by a worker that lost its lease.
    lease_until = models.DateTimeField(_("lease until"), null=True, blank=True)
    lease_token = models.UUIDField(_("lease token"), null=True, blank=True, editable=False)
    next_attempt_at = models.DateTimeField(
        _("next attempt at"), null=True, blank=True, help_text=_("Empty: no retry left.")
    )
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    provider_id = models.CharField(_("provider id"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("campaign message")
        verbose_name_plural = _("campaign messages")
        ordering = ["-planned_at", "-id"]
        indexes = [
            models.Index(fields=["campaign", "status"], name="campaignmessage_progress"),
            # A member's messages (the member page); the frequency cap counts their recent ones.
            models.Index(fields=["member", "channel", "claimed_at"], name="campaignmessage_cap"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "member", "channel"],
                name="campaignmessage_once",
                violation_error_message=_(
                    "This member has a message of this campaign on this channel already."
                ),
            ),
            models.CheckConstraint(
                condition=(Q(status="suppressed") & ~Q(suppression=""))
                | (~Q(status="suppressed") & Q(suppression="")),
                name="campaignmessage_suppression_reason",
                violation_error_message=_("A suppressed message, and only one, has a reason."),
            ),
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="campaignmessage_sent_has_time",
                violation_error_message=_("A sent message has the time it was sent."),
            ),
            models.CheckConstraint(
                condition=~Q(status="sending")
                | Q(lease_until__isnull=False, lease_token__isnull=False),
                name="campaignmessage_sending_has_lease",
                violation_error_message=_("A message being sent has a lease."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} → {self.member_id} ({self.channel}): {self.status}"

    @property
    def idempotency_key(self) -> str:
        """The key a backend dedupes by: the same for every attempt of this message."""
        return f"loyalty-message-{self.pk}"


class FrequencyCap(models.Model):
    """At most `max_messages` messages per member in any rolling `period` (on one channel, or on
    all channels together). Every active rule applies, so the strictest one decides."""

    class Unit(models.TextChoices):
        HOURS = "hours", _("hours")
        DAYS = "days", _("days")

    channel = models.CharField(
        _("channel"),
        max_length=8,
        choices=Channel.choices,
        blank=True,
        help_text=_("Empty: messages on every channel together."),
    )
    max_messages = models.PositiveSmallIntegerField(_("at most (messages)"))
    period = models.PositiveSmallIntegerField(_("per rolling period of"))
    unit = models.CharField(_("unit"), max_length=8, choices=Unit.choices, default=Unit.DAYS)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("frequency cap")
        verbose_name_plural = _("frequency caps")
        ordering = ["channel", "unit", "period"]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_messages__gte=1) & Q(period__gte=1),
                name="frequencycap_positive",
                violation_error_message=_("A cap allows at least one message per period."),
            )
        ]

    def __str__(self) -> str:
        channel = self.get_channel_display() if self.channel else _("all channels")
        return f"{channel}: {self.max_messages} / {self.period} {self.get_unit_display()}"

    @property
    def window(self) -> timedelta:
        return timedelta(**{self.unit: self.period})
