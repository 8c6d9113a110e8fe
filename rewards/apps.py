from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self) -> None:
        # The configuration change log (/audit/): the catalogue and its tier prices. Not voucher
        # codes (the codes are what a member redeems) nor redemptions (a member's own story).
        from auditlog.registry import auditlog

        from rewards.models import Reward, RewardTierPrice

        auditlog.register(Reward, exclude_fields=["updated_at"], m2m_fields={"visible_tiers"})
        auditlog.register(RewardTierPrice)
