"""Personalised offers: the options a marketer gives an offer campaign, and the rule that picks
one per member from the member's own purchase history (see `campaigns.offers`)."""

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campaigns.models.campaigns import Campaign


class CampaignOffer(models.Model):
    """One option of an offer campaign: this reward for the members its rule matches.

    Per campaign, a member is offered the first option (highest priority first) whose rule
    matches their history, so a fallback with the lowest priority catches everyone else.
    """

    class Rule(models.TextChoices):
        TOP_CATEGORY = "top_category", _("Their most-bought category is")
        BOUGHT_CATEGORY = "bought_category", _("They bought in the category in the last N days")
        FALLBACK = "fallback", _("Everyone else (fallback)")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="offers", verbose_name=_("campaign")
    )
    reward = models.ForeignKey(
        "rewards.Reward", on_delete=models.PROTECT, related_name="+", verbose_name=_("reward")
    )
    rule = models.CharField(_("rule"), max_length=20, choices=Rule.choices)
    category = models.CharField(
        _("category"), max_length=64, blank=True, help_text=_("As on the purchase lines.")
    )
    days = models.PositiveIntegerField(
        _("days"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_("For “bought in the category in the last N days” only."),
    )
    priority = models.IntegerField(
        _("priority"), default=0, help_text=_("Higher is tried first; the first match wins.")
    )

    class Meta:
        verbose_name = _("campaign offer")
        verbose_name_plural = _("campaign offers")
        ordering = ["campaign", "-priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(rule="fallback") & Q(category=""))
                | (~Q(rule="fallback") & ~Q(category="")),
                name="campaign_offer_category_per_rule",
                violation_error_message=_(
                    "A category rule needs a category; the fallback takes none."
                ),
            ),
            models.CheckConstraint(
                # `days IS NOT NULL` spelled out: a NULL would make the check NULL, which passes.
                condition=(Q(rule="bought_category") & Q(days__isnull=False) & Q(days__gte=1))
                | (~Q(rule="bought_category") & Q(days__isnull=True)),
                name="campaign_offer_days_per_rule",
                violation_error_message=_(
                    "“Bought in the last N days” needs a number of days; the other rules take none."
                ),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.get_rule_display()} {self.category}".strip()

    def clean(self) -> None:
        if self.campaign_id is not None and self.campaign.kind != Campaign.Kind.OFFER:
            raise ValidationError(
                {"campaign": _("Only an offer campaign has offers.")}, code="not_an_offer_campaign"
            )
