"""The project's base task: every registered task retries database errors, and only those."""

import psycopg.errors
import pytest
from django.db import InterfaceError, OperationalError

from loyalty_site.celery import LoyaltyTask, app
from loyalty_site.errors import Conflict
from rewards import services as rewards_services

FIRST_PARTY = ("members", "ledger", "rewards", "campaigns", "loyalty_site")
TASK = "rewards.voucher_codes_expire_chunk"
CHUNK = ([1, 2], "2026-12-02T02:00:00+00:00")


def deadlock() -> OperationalError:
    """What Django raises when PostgreSQL picks the transaction as a deadlock's victim."""
    error = OperationalError("deadlock detected")
    error.__cause__ = psycopg.errors.DeadlockDetected("forced")
    return error


def _ours() -> dict:
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if name.split(".")[0] in FIRST_PARTY}


def test_every_task_of_ours_takes_the_retry_policy_of_the_base_task():
    tasks = _ours()
    assert TASK in tasks and "campaigns.tiers_recalculate" in tasks
    # A task that set its own autoretry_for (the built-in ConnectionError, which Django never
    # raises) would show here: the decorator's options override the class attributes.
    differing = {
        name: (task.autoretry_for, task.max_retries)
        for name, task in tasks.items()
        if not isinstance(task, LoyaltyTask)
        or tuple(task.autoretry_for) != (OperationalError, InterfaceError)
        or task.max_retries != LoyaltyTask.max_retries
    }
    assert differing == {}


@pytest.fixture
def _not_propagating():
    # An eager run replays a retry in-process only when it does not propagate errors (Task.apply
    # re-applies the retry's signature); the suite's conftest turns propagation on.
    before = app.conf.task_eager_propagates
    app.conf.task_eager_propagates = False
    yield
    app.conf.task_eager_propagates = before


def _flaky(monkeypatch, errors: list[Exception]) -> list[int]:
    calls = []

    def voucher_codes_expire(**kwargs):
        calls.append(kwargs)
        if errors:
            raise errors.pop(0)
        return 7

    monkeypatch.setattr(rewards_services, "voucher_codes_expire", voucher_codes_expire)
    return calls


@pytest.mark.parametrize(
    "error",
    [
        lambda: OperationalError("server closed the connection"),
        lambda: InterfaceError("connection already closed"),
        deadlock,  # a chunk that lost a deadlock is run again, not lost
    ],
    ids=["operational", "interface", "deadlock"],
)
@pytest.mark.usefixtures("_not_propagating")
def test_a_task_retries_a_database_error_and_then_succeeds(monkeypatch, error):
    calls = _flaky(monkeypatch, [error(), error()])
    result = app.tasks[TASK].apply(CHUNK)
    assert result.get() == 7
    assert len(calls) == 3
    assert calls[-1]["ids"] == [1, 2]  # the retry is the same chunk


@pytest.mark.usefixtures("_not_propagating")
def test_a_task_that_deadlocks_once_succeeds_on_its_first_retry(monkeypatch):
    calls = _flaky(monkeypatch, [deadlock()])
    assert app.tasks[TASK].apply(CHUNK).get() == 7
    assert len(calls) == 2


@pytest.mark.parametrize(
    "error", [lambda: OperationalError("down"), deadlock], ids=["down", "deadlock"]
)
@pytest.mark.usefixtures("_not_propagating")
def test_a_task_gives_up_after_max_retries(monkeypatch, error):
    calls = _flaky(monkeypatch, [error() for _ in range(LoyaltyTask.max_retries + 2)])
    result = app.tasks[TASK].apply(CHUNK)
    assert result.failed() and isinstance(result.result, OperationalError)
    assert len(calls) == 1 + LoyaltyTask.max_retries


@pytest.mark.parametrize("error", [Conflict("refused"), ConnectionError("not Django's")])
@pytest.mark.usefixtures("_not_propagating")
def test_a_refusal_or_another_error_is_not_retried(monkeypatch, error):
    calls = _flaky(monkeypatch, [error])
    result = app.tasks[TASK].apply(CHUNK)
    assert result.failed() and result.result is error
    assert len(calls) == 1


# --- queues: default, sends, reports (loyalty_site/celery.py) ---
def _queue(name: str) -> str:
    return app.amqp.router.route({}, name)["queue"].name


def test_sends_and_reports_have_their_own_queues_the_rest_the_default():
    tasks = _ours()
    assert {name: _queue(name) for name in tasks if name.startswith("campaigns.messages")} == {
        "campaigns.messages_fan_out": "sends",
        "campaigns.messages_send_chunk": "sends",
        "campaigns.messages_retry": "sends",
    }
    assert _queue("campaigns.campaign_send") == "sends"
    for name in (
        "members.job_run",
        "ledger.ledger_reconcile_chunk",
        "loyalty_site.dashboard_refresh",
    ):
        assert _queue(name) == "reports", name
    assert _queue("rewards.reservations_expire_chunk") == "default"
    assert _queue("ledger.points_expire") == "default"
    # Every route names a task that exists (a renamed task would silently go to default).
    from loyalty_site.celery import QUEUES, TASK_QUEUES

    assert set(TASK_QUEUES) <= set(tasks)
    assert {_queue(name) for name in tasks} == set(QUEUES)


def test_every_queue_has_a_worker_in_production_and_in_make_run():
    from pathlib import Path

    from django.conf import settings

    from loyalty_site.celery import QUEUES

    def consumed(procfile: str) -> set[str]:
        queues = set()
        for line in (Path(settings.BASE_DIR) / procfile).read_text().splitlines():
            words = line.split()
            if "worker" in words and "--queues" in words:
                queues |= set(words[words.index("--queues") + 1].split(","))
        return queues

    assert consumed("Procfile") == set(QUEUES)
    assert consumed("Procfile.dev") == set(QUEUES)
