from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = _("Ledger")

    def ready(self) -> None:
        # A tier change dated in a closed month would move that month's liability by tier:
        # members asks the period close through its hook (members imports no ledger).
        from ledger.finance.closing import dated_in_open_period
        from members.periods import tier_change_dating_register

        tier_change_dating_register(dated_in_open_period)
