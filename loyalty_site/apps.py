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
        _changes_log()
        # The exports' job kinds, for the worker too (it loads no URLs).
        from loyalty_site import exports  # noqa: F401


def _changes_log() -> None:
    """Channels, webhook subscriptions and the schedules in the configuration change log.

    Never a secret or a key: a subscription's signing secret is left out, and channel API keys
    are not registered at all (their primary key holds the key's hash).
    """
    from auditlog.registry import auditlog
    from django_celery_beat.models import PeriodicTask

    from loyalty_site.models import Channel, WebhookSubscription

    auditlog.register(Channel)
    auditlog.register(WebhookSubscription, exclude_fields=["secret"])
    # Not the run bookkeeping that beat writes after every run.
    auditlog.register(
        PeriodicTask, exclude_fields=["last_run_at", "total_run_count", "date_changed"]
    )
