"""Third-party apps under the names staff know them by, translated, in the admin's app list.

Each subclass keeps its app's name, label and start-up (``ready``); only the heading changes.
INSTALLED_APPS lists these instead of the apps' own configs.
"""

from axes.apps import AppConfig as AxesAppConfig
from django.utils.translation import gettext_lazy as _
from django.utils.translation import gettext_noop, ngettext_lazy
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


# django-celery-beat ships no Dutch. Its admin marks these strings for translation, and Django
# looks them up in our catalogue first (LOCALE_PATHS): marked here too so that makemessages keeps
# them in locale/nl. They are the scheduled jobs' admin actions, their messages and the model.
SCHEDULED_JOBS_STRINGS = [
    gettext_noop("Enable selected tasks"),
    gettext_noop("Disable selected tasks"),
    gettext_noop("Toggle activity of selected tasks"),
    gettext_noop("Run selected tasks"),
    ngettext_lazy("{0} task was successfully enabled", "{0} tasks were successfully enabled"),
    ngettext_lazy("{0} task was successfully disabled", "{0} tasks were successfully disabled"),
    ngettext_lazy("{0} task was successfully toggled", "{0} tasks were successfully toggled"),
    gettext_noop("periodic task"),
    gettext_noop("periodic tasks"),
]
