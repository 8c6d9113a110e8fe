from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = _("Campaigns")

    def ready(self) -> None:
        # The configuration change log (/audit/): the programme's rules that Marketing edits.
        # Nothing per member (messages, awards, progress, snapshots): those are a member's story.
        from auditlog.registry import auditlog

        from campaigns import models

        # Counters that purchases move (by conditional UPDATE, which sends no signal anyway)
        # and save times are not configuration.
        auditlog.register(
            models.EarningRule, exclude_fields=["budget_spent"], m2m_fields={"tiers", "segments"}
        )
        auditlog.register(models.Campaign, exclude_fields=["points_spent", "updated_at"])
        auditlog.register(models.Segment, exclude_fields=["updated_at"])
        auditlog.register(models.MessageTemplate, exclude_fields=["updated_at"])
        for model in (
            models.AbuseRule,
            models.CampaignOffer,
            models.FrequencyCap,
            models.Challenge,
            models.Badge,
            models.EngagementKind,
        ):
            auditlog.register(model)
