"""Channels of the REST API (their keys and scopes) and outgoing webhooks.

A channel's name is what the ledger records as the channel of an entry, a purchase or a
redemption, so it is unique and should not change once the channel has written anything.
"""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.models import AbstractAPIKey

from loyalty_site.rates import rate_validate
from loyalty_site.webhook_targets import webhook_url_validate

SCOPES = {
    "members:read": _("Read members, cards, ledgers and the rewards a member may see"),
    "members:write": _("Enrol members"),
    "purchases:write": _("Record purchases and returns"),
    "events:write": _("Send engagement events"),
    "redemptions:write": _("Redeem, confirm and cancel"),
}


class Channel(models.Model):
    class Kind(models.TextChoices):
        POS = "pos", _("Point of sale")
        WEBSHOP = "webshop", _("Webshop")
        APP = "app", _("App")
        PARTNER = "partner", _("Partner")

    name = models.CharField(_("name"), max_length=64, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.POS)
    # Empty: every store. Otherwise the channel writes and sees only these stores' purchases.
    stores = models.JSONField(_("stores"), default=list, blank=True)
    scopes = models.JSONField(_("scopes"), default=list, blank=True)
    # Empty: LOYALTY_API_RATE. E.g. "600/min".
    rate = models.CharField(
        _("request rate"), max_length=32, blank=True, validators=[rate_validate]
    )
    # Empty: LOYALTY_LATE_PURCHASE_DAYS.
    late_purchase_days = models.PositiveIntegerField(
        _("late purchase days"),
        null=True,
        blank=True,
        help_text=_(
            "How many days late a purchase may be uploaded; empty: the programme's default."
        ),
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("channel")
        verbose_name_plural = _("channels")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


class PartnerLink(models.Model):
    """A member who presented their card to a partner (a purchase by card number, an enrolment
    through it). A partner key reaches only members linked to its channel."""

    # No index of its own: partnerlink_once starts with it.
    channel = models.ForeignKey(
        Channel,
        on_delete=models.CASCADE,
        db_index=False,
        related_name="partner_links",
        verbose_name=_("channel"),
    )
    member = models.ForeignKey(
        "members.Member",
        on_delete=models.CASCADE,
        related_name="partner_links",
        verbose_name=_("member"),
    )
    linked_at = models.DateTimeField(_("linked at"), default=timezone.now)

    class Meta:
        verbose_name = _("partner link")
        verbose_name_plural = _("partner links")
        constraints = [
            models.UniqueConstraint(
                fields=["channel", "member"],
                name="partnerlink_once",
                violation_error_message=_("This member is already linked to this partner."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.channel_id} {self.member_id}"


class ChannelAPIKey(AbstractAPIKey):
    """A channel's key, stored hashed; the key itself is shown once, when it is created."""

    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="api_keys", verbose_name=_("channel")
    )

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("channel API key")
        verbose_name_plural = _("channel API keys")


class WebhookSubscription(models.Model):
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="subscriptions", verbose_name=_("channel")
    )
    # Public https hosts only, checked here and again before each delivery (webhook_targets).
    url = models.URLField(_("URL"), max_length=500, validators=[webhook_url_validate])
    # Signs every delivery (HMAC-SHA256); the receiver keeps the same secret.
    secret = models.CharField(_("secret"), max_length=128)
    event_types = models.JSONField(_("event types"), default=list)
    # Off: only events that the channel's own requests caused.
    all_channels = models.BooleanField(_("events of all channels"), default=False)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("webhook subscription")
        verbose_name_plural = _("webhook subscriptions")

    def __str__(self) -> str:
        return f"{self.channel} → {self.url}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENDING = "sending", _("Sending")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed")

    subscription = models.ForeignKey(
        WebhookSubscription,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("subscription"),
    )
    event_id = models.UUIDField(_("event id"), default=uuid.uuid4, editable=False)
    event_type = models.CharField(_("event type"), max_length=64)
    # Set by a caller that may emit the same event again (a daily job run twice, or by two
    # workers at once): a subscription gets one delivery per key. Empty: no deduplication.
    dedupe_key = models.CharField(
        _("deduplication key"), max_length=200, blank=True, default="", editable=False
    )
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    response_status = models.PositiveIntegerField(_("last response status"), null=True)
    last_error = models.TextField(_("last error"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True)

    class Meta:
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        indexes = [models.Index(fields=["status", "created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "dedupe_key"],
                condition=~models.Q(dedupe_key=""),
                name="webhookdelivery_dedupe_key_once",
                violation_error_message=_("This event was already delivered to this subscription."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"


class DashboardDay(models.Model):
    """One day's figures for the dashboard (a day in the programme's time zone, TIME_ZONE).

    Computed from the day's entries, purchases, redemptions and answers by
    `loyalty_site.dashboard.days.day_refresh` (set-based queries, no loop over members) and
    upserted, so refreshing a day again gives the same row. The dashboard reads these rows and
    computes only today live; nothing here is edited by hand.
    """

    day = models.DateField(_("day"), unique=True)
    enrolments = models.PositiveIntegerField(_("enrolments"), default=0)
    # Members with a purchase or an earn entry on the day, and in the 30 days ending with it.
    active_members = models.PositiveIntegerField(_("active members"), default=0)
    active_members_30d = models.PositiveIntegerField(_("active members (30 days)"), default=0)
    # Flows of the day, each as a positive number of points, except the net ones.
    points_issued = models.BigIntegerField(_("points issued"), default=0)
    points_redeemed = models.BigIntegerField(_("points redeemed"), default=0)
    points_expired = models.BigIntegerField(_("points expired"), default=0)
    points_adjusted = models.BigIntegerField(_("points adjusted (net)"), default=0)
    points_reversed = models.BigIntegerField(_("points reversed (net)"), default=0)
    # Stocks at the end of the day: the sum of positive balances, and the accounts below zero.
    points_outstanding = models.BigIntegerField(_("outstanding points"), default=0)
    members_in_debt = models.PositiveIntegerField(_("members in debt"), default=0)
    redemptions = models.PositiveIntegerField(_("redemptions"), default=0)
    purchases = models.PositiveIntegerField(_("purchases"), default=0)
    # Purchases in the programme's currency (LOYALTY_CURRENCY) only; others are counted above.
    revenue = models.DecimalField(_("revenue"), max_digits=16, decimal_places=2, default=0)
    currency = models.CharField(_("currency"), max_length=3)
    nps_responses = models.PositiveIntegerField(_("NPS answers"), default=0)
    nps_promoters = models.PositiveIntegerField(_("NPS promoters"), default=0)
    nps_detractors = models.PositiveIntegerField(_("NPS detractors"), default=0)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("dashboard day")
        verbose_name_plural = _("dashboard days")
        ordering = ["day"]

    def __str__(self) -> str:
        return str(self.day)


class DashboardRewardDay(models.Model):
    """A reward's redemptions confirmed on one day (for the dashboard's top rewards)."""

    day = models.DateField(_("day"))
    reward = models.ForeignKey(
        "rewards.Reward", on_delete=models.CASCADE, related_name="+", verbose_name=_("reward")
    )
    redemptions = models.PositiveIntegerField(_("redemptions"), default=0)
    points = models.BigIntegerField(_("points"), default=0)

    class Meta:
        verbose_name = _("dashboard reward day")
        verbose_name_plural = _("dashboard reward days")
        constraints = [
            models.UniqueConstraint(
                fields=["day", "reward"],
                name="dashboard_reward_day_once",
                violation_error_message=_("A reward has one row per day."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.reward_id}"
