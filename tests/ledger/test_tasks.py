"""The ledger's nightly jobs work in chunks, each its own short task (issue 12, point 17)."""

from datetime import UTC, datetime

import pytest
import time_machine

from ledger import tasks
from ledger.models import Entry
from ledger.services import points_earn
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

EARNED = datetime(2024, 1, 10, tzinfo=UTC)
NIGHT = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # every lot earned on EARNED has expired


def test_points_expiry_is_handed_out_in_chunks_that_each_expire_their_accounts(
    settings, monkeypatch
):
    settings.LOYALTY_JOB_CHUNK_SIZE = 2
    members = [MemberFactory() for _ in range(5)]
    for member in members:
        points_earn(member=member, points=10, at=EARNED)
    sent = []
    run = tasks.points_expire_chunk.run

    def chunk_run(account_ids, now):
        sent.append(list(account_ids))
        return run(account_ids, now)

    monkeypatch.setattr(tasks.points_expire_chunk, "run", chunk_run)
    with time_machine.travel(NIGHT, tick=False):
        assert tasks.points_expire.delay().get() == 3
    assert [len(chunk) for chunk in sent] == [2, 2, 1]
    assert len({account for chunk in sent for account in chunk}) == 5
    assert Entry.objects.filter(kind=Entry.Kind.EXPIRE).count() == 5
    with time_machine.travel(NIGHT, tick=False):
        assert tasks.points_expire.delay().get() == 0  # nothing left: no chunk at all


def test_a_chunk_delivered_twice_expires_once():
    member = MemberFactory()
    points_earn(member=member, points=10, at=EARNED)
    account_id = member.account.pk
    assert tasks.points_expire_chunk.delay([account_id], NIGHT.isoformat()).get() == 10
    assert tasks.points_expire_chunk.delay([account_id], NIGHT.isoformat()).get() == 0
    assert Entry.objects.filter(kind=Entry.Kind.EXPIRE).count() == 1
