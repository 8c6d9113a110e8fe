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


def test_reconcile_finds_each_kind_of_mismatch_set_based(django_assert_max_num_queries):
    """One statement per range finds the accounts that disagree; only those are read again."""
    from ledger.selectors import account_ids_mismatched, ledger_mismatches

    members = [MemberFactory() for _ in range(6)]
    for member in members:
        services.points_earn(member=member, points=40)
    ids = [member.account.pk for member in members]
    Account.objects.filter(pk=ids[1]).update(balance=39)  # entries and lots disagree
    Account.objects.filter(pk=ids[3]).update(held=5)  # no open hold
    Account.objects.filter(pk=ids[4]).update(pending=7)  # no pending points
    assert account_ids_mismatched(first=min(ids), last=max(ids)) == [ids[1], ids[3], ids[4]]
    with django_assert_max_num_queries(4):  # the range's ids, the statement, the three again
        found = {account.pk: problems for account, problems in ledger_mismatches()}
    assert found == {
        ids[1]: ["balance 39 != entries 40", "balance 39 != lots 40"],
        ids[3]: ["held 5 != open holds 0"],
        ids[4]: ["pending 7 != pending points 0"],
    }
    # A chunk of the nightly job sees only its own accounts, even inside a wider range.
    assert [a.pk for a, _p in ledger_mismatches(account_ids=[ids[0], ids[4]])] == [ids[4]]
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command(
            "ledger_reconcile", "--no-progress", "--chunk-size", "2", stdout=out, stderr=out
        )
    assert "checked 6 accounts, 3 mismatches" in out.getvalue()
