from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltySiteConfig(AppConfig):
    name = "loyalty_site"
    verbose_name = _("Channels and webhooks")

    def ready(self) -> None:
        # The apps announce their changes (members.events); the webhooks record them as
        # deliveries in the same transaction.
        from loyalty_site import checks  # noqa: F401  (registers the deploy checks)
        from loyalty_site.webhooks import events_listen

        events_listen()
