"""A campaign's results: per window and metric, each group's summary statistics.

Stored as sums (n, Σx, Σx²; for a yes/no metric Σx = Σx² = the members with "yes"), not as
lifts: the sums are what one aggregate query yields, and `campaigns.stats` turns them into lifts
and intervals on read (`campaigns.results.campaign_results`). Written by
`campaign_results_refresh`, never by hand.
"""

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from campaigns.models.campaigns import Campaign

_SUM = {"max_digits": 30, "decimal_places": 4, "default": 0}


class CampaignResult(models.Model):
    class Window(models.TextChoices):
        CAMPAIGN = "campaign", _("During the campaign")
        FOLLOW_UP = "follow_up", _("Follow-up after the end")

    class Metric(models.TextChoices):
        REACH = "reach", _("Reach")
        CONVERSION = "conversion", _("Conversion (share who purchased)")
        PURCHASES = "purchases", _("Purchases per member")
        REVENUE = "revenue", _("Revenue per member")
        POINTS = "points", _("Points earned per member")
        REDEMPTION = "redemption", _("Redemption rate")
        OFFER_REDEMPTION = "offer_redemption", _("Offer redemption rate")

    # Yes/no metrics: a share of members, compared by the two-proportion test.
    PROPORTIONS = frozenset({Metric.CONVERSION, Metric.REDEMPTION, Metric.OFFER_REDEMPTION})

    # No index of its own: campaign_result_once starts with it.
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="results",
        verbose_name=_("campaign"),
        db_index=False,
    )
    window = models.CharField(_("window"), max_length=16, choices=Window.choices)
    metric = models.CharField(_("metric"), max_length=20, choices=Metric.choices)
    starts_at = models.DateTimeField(_("window starts"))
    ends_at = models.DateTimeField(_("window ends"))
    control_n = models.PositiveIntegerField(_("control members"), default=0)
    control_sum = models.DecimalField(_("control sum"), **_SUM)
    control_sum_of_squares = models.DecimalField(_("control sum of squares"), **_SUM)
    treated_n = models.PositiveIntegerField(_("treated members"), default=0)
    treated_sum = models.DecimalField(_("treated sum"), **_SUM)
    treated_sum_of_squares = models.DecimalField(_("treated sum of squares"), **_SUM)
    computed_at = models.DateTimeField(_("computed at"), default=timezone.now)

    class Meta:
        verbose_name = _("campaign result")
        verbose_name_plural = _("campaign results")
        ordering = ["campaign", "window", "metric"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "window", "metric"],
                name="campaign_result_once",
                violation_error_message=_("A campaign has one result per window and metric."),
            ),
            models.CheckConstraint(
                condition=models.Q(ends_at__gte=models.F("starts_at")),
                name="campaign_result_window_ordered",
                violation_error_message=_("A result's window must end after it starts."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign}: {self.get_metric_display()} ({self.get_window_display()})"
