import io

import pytest
from django.core.management import call_command
from django_celery_beat.models import PeriodicTask

from loyalty_site.celery import app
from loyalty_site.schedules import SCHEDULES, schedules_sync


def test_every_scheduled_task_is_a_registered_celery_task():
    # A typo in a task name would leave a nightly job that beat sends and no worker runs.
    app.loader.import_default_modules()
    registered = set(app.tasks)
    assert SCHEDULES
    missing = [entry.task for entry in SCHEDULES if entry.task not in registered]
    assert missing == []


@pytest.mark.django_db
def test_sync_creates_each_schedule_once_and_keeps_operator_changes():
    assert set(schedules_sync().values()) == {"created"}
    assert PeriodicTask.objects.filter(name__in=[e.name for e in SCHEDULES]).count() == len(
        SCHEDULES
    )
    first = SCHEDULES[0]
    PeriodicTask.objects.filter(name=first.name).update(enabled=False)

    assert set(schedules_sync().values()) == {"kept"}
    assert PeriodicTask.objects.get(name=first.name).enabled is False

    out = io.StringIO()
    call_command("setup_schedules", "--reset", stdout=out)
    assert f"reset {first.name}" in out.getvalue()
    task = PeriodicTask.objects.get(name=first.name)
    assert task.enabled is True and task.task == first.task
    assert task.crontab.minute == first.minute and task.crontab.hour == first.hour
