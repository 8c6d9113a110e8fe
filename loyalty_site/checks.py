"""Deploy checks of our own settings (`manage.py check --deploy`)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def webhook_private_targets_check(app_configs, **kwargs):
    if settings.LOYALTY_WEBHOOK_ALLOW_PRIVATE:
        return [
            Warning(
                "LOYALTY_WEBHOOK_ALLOW_PRIVATE is on: webhooks may be sent to loopback and "
                "private addresses, such as the cloud metadata service.",
                hint="It is for tests and local development; unset it in production.",
                id="loyalty_site.W001",
            )
        ]
    return []
