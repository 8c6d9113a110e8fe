"""Reconciliation runs are stored, whoever starts them, and the finance page shows the last."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from ledger import services, tasks
from ledger.finance import reconciliation
from ledger.models import Account, ReconciliationRun
from members.models import BackgroundJob
from tests.factories import MemberFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db


def accounts(count: int) -> list[Account]:
    members = [MemberFactory() for _ in range(count)]
    for member in members:
        services.points_earn(member=member, points=40)
    return [member.account for member in members]


def break_balance(account: Account, balance: int) -> None:
    # Someone edits a stored balance behind the services' back.
    Account.objects.filter(pk=account.pk).update(balance=balance)


def test_the_nightly_run_adds_up_its_chunks_into_one_stored_run(settings):
    settings.LOYALTY_JOB_CHUNK_SIZE = 2
    rows = accounts(5)
    break_balance(rows[1], 41)
    break_balance(rows[4], 39)
    assert tasks.ledger_reconcile() == 3  # chunks sent, run eagerly in the tests
    run = ReconciliationRun.objects.get()
    assert run.trigger == ReconciliationRun.Trigger.NIGHTLY and run.started_by is None
    assert (run.accounts, run.checked, run.chunks, run.mismatch_count) == (5, 5, 3, 2)
    assert run.finished
    assert [row["account"] for row in run.mismatches] == [rows[1].pk, rows[4].pk]
    assert run.mismatches[0]["problems"] == ["balance 41 != entries 40", "balance 41 != lots 40"]
    assert run.mismatches[0]["member"] == str(rows[1].member.public_id)


def test_a_chunk_delivered_twice_counts_once_and_the_run_waits_for_every_chunk(settings):
    rows = accounts(3)
    break_balance(rows[0], 1)
    ids = [account.pk for account in rows]
    run = reconciliation.reconciliation_start(
        trigger=ReconciliationRun.Trigger.NIGHTLY, account_ids=ids, chunk_size=2
    )
    assert tasks.ledger_reconcile_chunk(ids[:2], None, run.pk) == 1
    assert tasks.ledger_reconcile_chunk(ids[:2], None, run.pk) == 1  # redelivered
    run.refresh_from_db()
    assert (run.checked, run.mismatch_count, run.finished) == (2, 1, False)
    tasks.ledger_reconcile_chunk(ids[2:], None, run.pk)
    run.refresh_from_db()
    assert (run.checked, run.mismatch_count, run.finished) == (3, 1, True)


def test_the_sample_keeps_the_first_mismatches_by_account(monkeypatch):
    monkeypatch.setattr(ReconciliationRun, "SAMPLE", 2)
    rows = accounts(4)
    for account in rows:
        break_balance(account, 7)
    ids = [account.pk for account in rows]
    run = reconciliation.reconciliation_start(
        trigger=ReconciliationRun.Trigger.COMMAND, account_ids=ids, chunk_size=2
    )
    reconciliation.reconciliation_chunk(account_ids=ids[2:], run_id=run.pk)
    reconciliation.reconciliation_chunk(account_ids=ids[:2], run_id=run.pk)
    run.refresh_from_db()
    assert run.mismatch_count == 4
    assert [row["account"] for row in run.mismatches] == ids[:2]


def test_no_accounts_is_a_finished_run_with_nothing_checked():
    assert tasks.ledger_reconcile() == 0
    run = ReconciliationRun.objects.get()
    assert (run.accounts, run.chunks, run.finished) == (0, 0, True)


def test_the_command_stores_its_run():
    rows = accounts(2)
    call_command("ledger_reconcile", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO())
    break_balance(rows[0], 3)
    with pytest.raises(CommandError):
        call_command(
            "ledger_reconcile", "--no-progress", stdout=io.StringIO(), stderr=io.StringIO()
        )
    last, first = ReconciliationRun.objects.all()
    assert first.trigger == last.trigger == ReconciliationRun.Trigger.COMMAND
    assert (first.mismatch_count, last.mismatch_count, last.checked) == (0, 1, 2)


def test_run_now_stores_a_run_by_its_user_and_the_page_shows_the_last_run(
    client, staff_user, django_capture_on_commit_callbacks
):
    rows = accounts(2)
    break_balance(rows[1], 99)
    user = staff_user("Finance")
    client.force_login(user)
    page = client.get(reverse("finance")).content.decode()
    assert "No run yet." in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("finance-reconcile"))
    job = BackgroundJob.objects.get(kind="ledger.reconcile")
    assert response["Location"] == reverse("job", args=[job.pk])
    job.refresh_from_db()
    run = ReconciliationRun.objects.get()
    assert (run.trigger, run.started_by, run.checked, run.mismatch_count) == ("page", user, 2, 1)
    assert job.status == "done" and job.result["run"] == run.pk and job.result["count"] == 1
    page = client.get(reverse("finance")).content.decode()
    assert "Run now (finance page)" in page and str(user) in page
    assert "1 mismatch" in page and "balance 99 != entries 40" in page
    assert_no_unmarked_inline_code(page, None)


def test_the_page_shows_a_nightly_run_still_running_and_one_without_mismatches(client, staff_user):
    rows = accounts(3)
    ids = [account.pk for account in rows]
    run = reconciliation.reconciliation_start(
        trigger=ReconciliationRun.Trigger.NIGHTLY, account_ids=ids, chunk_size=2
    )
    reconciliation.reconciliation_chunk(account_ids=ids[:2], run_id=run.pk)
    client.force_login(staff_user("Administrator"))
    page = client.get(reverse("finance")).content.decode()
    assert "Nightly job" in page and "Running: 2 of 3 accounts checked" in page
    reconciliation.reconciliation_chunk(account_ids=ids[2:], run_id=run.pk)
    page = client.get(reverse("finance")).content.decode()
    assert "3 accounts checked" in page and "No mismatches" in page
