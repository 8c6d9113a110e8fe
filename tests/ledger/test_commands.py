import io

import pytest
from django.core.management import CommandError, call_command

from ledger import services, tasks
from ledger.models import Account
from ledger.selectors import balance_summary
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_ledger_reconcile_passes_and_fails():
    member = MemberFactory()
    services.points_earn(member=member, points=40)
    services.points_redeem(member=member, points=15)
    out = io.StringIO()
    call_command("ledger_reconcile", "--no-progress", stdout=out, stderr=io.StringIO())
    assert "1 accounts, 0 mismatches" in out.getvalue()
    assert tasks.ledger_reconcile() == 1  # one chunk of accounts
    assert tasks.ledger_reconcile_chunk([member.account.pk]) == 0

    # Someone edits a stored balance behind the services' back.
    Account.objects.filter(pk=member.account.pk).update(balance=26)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("ledger_reconcile", "--no-progress", stdout=out, stderr=io.StringIO())
    assert "balance 26 != entries 25" in out.getvalue()
    assert tasks.ledger_reconcile_chunk([member.account.pk]) == 1


def test_tasks_run_the_services():
    from datetime import UTC, datetime, timedelta

    member = MemberFactory()
    past = datetime.now(UTC) - timedelta(minutes=1)
    services.points_earn(member=member, points=10, expires_at=past)
    services.points_earn(
        member=member, points=5, pending_until=datetime.now(UTC) + timedelta(days=1)
    )
    assert tasks.points_expire.delay().get() == 1  # one chunk, which expired the 10 points
    assert tasks.points_mature() == 0  # no chunk: nothing is due
    assert tasks.holds_expire() == 0
    assert balance_summary(member=member) == {"balance": 0, "pending": 5, "held": 0, "available": 0}
    assert list(member.account.entries.values_list("kind", "amount")) == [
        ("expire", -10),
        ("earn", 10),
    ]


def test_schedules_declare_the_ledger_jobs():
    from loyalty_site.celery import app
    from loyalty_site.schedules import SCHEDULES

    app.loader.import_default_modules()
    names = {s.task for s in SCHEDULES}
    for task in (
        "ledger.points_expire",
        "ledger.points_mature",
        "ledger.holds_expire",
        "ledger.ledger_reconcile",
    ):
        assert task in names and task in app.tasks
