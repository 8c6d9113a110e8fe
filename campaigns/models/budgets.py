"""What a campaign gave each member per cap period: the per-member budget cap's counter.

One row per (campaign, member, period start), created and moved only under the member's row lock
(campaigns.services.locks) by campaigns.services.budgets. The cap is copied onto the row so that
a CHECK constraint can refuse any overspend that slips past the service; raising an active
campaign's cap raises it on its rows in the same transaction.
"""

from datetime import date

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from campaigns.models.campaigns import Campaign

# The period start of a lifetime cap: one row per member for the whole campaign.
LIFETIME_START = date(1970, 1, 1)


class CampaignMemberUsage(models.Model):
    campaign = models.ForeignKey(
        Campaign,
        on_delete=models.CASCADE,
        related_name="member_usage",
        verbose_name=_("campaign"),
        db_index=False,  # campaign_member_usage_once starts with it
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    period_start = models.DateField(_("period start"))
    points = models.PositiveIntegerField(_("points"), default=0)
    cap = models.PositiveIntegerField(_("cap"))

    class Meta:
        verbose_name = _("campaign usage per member")
        verbose_name_plural = _("campaign usage per member")
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "member", "period_start"],
                name="campaign_member_usage_once",
                violation_error_message=_("A member has one usage row per campaign and period."),
            ),
            models.CheckConstraint(
                condition=Q(points__lte=F("cap")),
                name="campaign_member_usage_within_cap",
                violation_error_message=_("A member cannot get more than the campaign's cap."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign_id}/{self.member_id} {self.period_start}: {self.points}"
