"""Campaign jobs: registered under their scheduled names, thin, and harmless when run twice."""

import pytest

from campaigns import tasks
from ledger.services import points_earn
from loyalty_site.celery import app
from members.models import TierHistory
from members.services import member_enrol
from tests.members.factories import ladder

pytestmark = pytest.mark.django_db


def test_tier_recalculation_task_keeps_its_scheduled_name():
    # loyalty_site.schedules and django-celery-beat's rows refer to the task by this name.
    app.loader.import_default_modules()
    assert app.tasks["campaigns.tiers_recalculate"].run is tasks.tiers_recalculate_task.run


def test_tier_recalculation_task_upgrades_once_and_a_second_run_changes_nothing():
    ladder()
    member = member_enrol(email="climber@example.nl")
    points_earn(member=member, points=700)
    assert tasks.tiers_recalculate_task.delay().get() == 1  # one chunk of members
    member.refresh_from_db()
    assert member.tier.name == "Silver"
    assert tasks.tiers_recalculate_task.delay().get() == 0  # no member's tier may change
    assert list(
        TierHistory.objects.filter(member=member)
        .exclude(reason=TierHistory.Reason.ENROL)
        .values_list("reason", "to_tier__name")
    ) == [(TierHistory.Reason.QUALIFIED, "Silver")]
