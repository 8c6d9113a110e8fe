from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MembersConfig(AppConfig):
    name = "members"
    verbose_name = _("Members")

    def ready(self) -> None:
        # The configuration change log (/audit/). Only the tier ladder: members, cards and
        # consents hold personal data that an erasure must remove, so they are never logged here
        # (their staff changes go to members.AuditEntry, which holds no personal values).
        from auditlog.registry import auditlog

        from members.models import Tier

        auditlog.register(Tier)
