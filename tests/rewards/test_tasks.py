from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from loyalty_site.schedules import SCHEDULES
from rewards import services, tasks
from rewards.models import Redemption
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


def test_expiry_task_releases_due_reservations(member_with):
    member = member_with(100)
    reservation = services.redemption_reserve(member=member, reward=RewardFactory(points=100))
    assert tasks.reservations_expire_task.delay().get() == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert tasks.reservations_expire_task.delay().get() == 1
        assert tasks.reservations_expire_task.delay().get() == 0
    reservation.refresh_from_db()
    assert reservation.status == Redemption.Status.EXPIRED


def test_tasks_are_scheduled():
    scheduled = {entry.task for entry in SCHEDULES}
    assert {"rewards.reservations_expire", "rewards.voucher_codes_expire"} <= scheduled
