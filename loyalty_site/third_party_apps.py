"""Third-party apps under the names staff know them by, translated, in the admin's app list.

Each subclass keeps its app's name, label and start-up (``ready``); only the heading changes.
INSTALLED_APPS lists these instead of the apps' own configs.
"""

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _
from django_celery_beat.apps import BeatConfig
from rest_framework_api_key.apps import RestFrameworkApiKeyConfig


class LoginAttemptsConfig(AxesAppConfig):
    verbose_name = _("Login attempts")


class APIKeysConfig(RestFrameworkApiKeyConfig):
    # The package's own keys, which belong to no channel; channel keys are under "Channels and
    # webhooks".
    verbose_name = _("API keys without a channel")


class ScheduledJobsConfig(BeatConfig):
    verbose_name = _("Scheduled jobs")
