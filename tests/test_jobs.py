"""Every scheduled job that walks many rows works in short, resumable chunks (issue 12, point 17).

Each job below is a coordinator and a chunk task (``members.jobs.chunks_send``). For each one:
the coordinator sends N chunks for N × LOYALTY_JOB_CHUNK_SIZE due rows, all with one "as of"
moment; a chunk processes only its own ids; a chunk run twice (a redelivery) does nothing the
second time; a chunk that never ran leaves exactly its own rows due, and the next run does them.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine

from campaigns import tasks as campaign_tasks
from campaigns.models import EngagementEvent
from ledger import services as ledger_services
from ledger import tasks as ledger_tasks
from ledger.models import Account, Entry, Hold, IdempotencyRecord, PendingEarn
from loyalty_site import tasks as site_tasks
from loyalty_site import webhooks
from loyalty_site.models import Channel, WebhookDelivery, WebhookSubscription
from members.jobs import chunks_send
from members.models import AuditEntry, Member, TierHistory
from rewards import services as reward_services
from rewards import tasks as reward_tasks
from rewards.models import Redemption, VoucherCode
from tests.campaigns.factories import EngagementKindFactory
from tests.factories import MemberFactory
from tests.members.factories import ladder
from tests.rewards.factories import RewardFactory, VoucherCodeFactory

pytestmark = pytest.mark.django_db

SIZE = 2
CHUNKS = 3
ROWS = SIZE * CHUNKS
NIGHT = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)  # 03:00 on 2 December in Amsterdam
BEFORE = NIGHT - timedelta(days=2)  # when the due rows were made


def _member_with(points: int, **kwargs) -> Member:
    member = MemberFactory(**kwargs)
    if points:
        ledger_services.points_earn(member=member, points=points, at=BEFORE)
    return member


# Each maker builds `n` rows due at NIGHT and returns the ids its selector lists for them.


def _expiring_accounts(n):
    members = [MemberFactory() for _ in range(n)]
    for member in members:
        ledger_services.points_earn(member=member, points=10, at=datetime(2024, 1, 10, tzinfo=UTC))
    return [member.account.pk for member in members]


def _expired(ids):
    return set(
        Entry.objects.filter(account_id__in=ids, kind=Entry.Kind.EXPIRE).values_list(
            "account_id", flat=True
        )
    )


def _pending(n):
    return [
        ledger_services.points_earn(
            member=MemberFactory(), points=5, pending_until=NIGHT - timedelta(days=1)
        ).pk
        for _ in range(n)
    ]


def _matured(ids):
    return set(
        PendingEarn.objects.filter(pk__in=ids, status=PendingEarn.Status.MATURED).values_list(
            "pk", flat=True
        )
    )


def _holds(n):
    return [
        ledger_services.hold_place(member=_member_with(50), points=20, at=BEFORE).pk
        for _ in range(n)
    ]


def _holds_released(ids):
    return set(
        Hold.objects.filter(pk__in=ids, status=Hold.Status.EXPIRED).values_list("pk", flat=True)
    )


def _reservations(n):
    reward = RewardFactory(points=30, stock=100)
    return [
        reward_services.redemption_reserve(member=_member_with(50), reward=reward).pk
        for _ in range(n)
    ]


def _reservations_released(ids):
    return set(
        Redemption.objects.filter(pk__in=ids, status=Redemption.Status.EXPIRED).values_list(
            "pk", flat=True
        )
    )


def _voucher_codes(n):
    return [VoucherCodeFactory(expires_at=NIGHT - timedelta(days=1)).pk for _ in range(n)]


def _codes_expired(ids):
    return set(
        VoucherCode.objects.filter(pk__in=ids, status=VoucherCode.Status.EXPIRED).values_list(
            "pk", flat=True
        )
    )


def _birthdays(n):
    EngagementKindFactory(code="birthday", points=75, limit_count=None)
    MemberFactory(birth_date=date(1990, 12, 3))  # tomorrow: not due
    return [MemberFactory(birth_date=date(1980 + i, 12, 2)).pk for i in range(n)]


def _birthdays_rewarded(ids):
    return set(
        EngagementEvent.objects.filter(member_id__in=ids, kind__code="birthday").values_list(
            "member_id", flat=True
        )
    )


def _climbers(n):
    ladder()
    return [_member_with(700).pk for _ in range(n)]


def _tiers_moved(ids):
    return set(
        TierHistory.objects.filter(
            member_id__in=ids, reason=TierHistory.Reason.QUALIFIED
        ).values_list("member_id", flat=True)
    )


def _idempotency_records(n):
    ids = [
        IdempotencyRecord.objects.create(channel="pos", key=f"k{i}", fingerprint="f").pk
        for i in range(n)
    ]
    IdempotencyRecord.objects.filter(pk__in=ids).update(created_at=NIGHT - timedelta(hours=100))
    IdempotencyRecord.objects.create(channel="pos", key="fresh", fingerprint="f")  # kept
    return ids


def _records_gone(ids):
    return set(ids) - set(IdempotencyRecord.objects.values_list("pk", flat=True))


def _subscription() -> WebhookSubscription:
    channel = Channel.objects.create(name="app", kind=Channel.Kind.APP)
    return WebhookSubscription.objects.create(
        channel=channel,
        url="https://app.example.com/hook",
        secret="s3cret",
        event_types=["points.expiring_soon"],
        all_channels=True,
    )


def _old_deliveries(n):
    subscription = _subscription()
    ids = [
        WebhookDelivery.objects.create(
            subscription=subscription,
            event_type="points.expiring_soon",
            payload={},
            status=WebhookDelivery.Status.DELIVERED,
        ).pk
        for _ in range(n)
    ]
    WebhookDelivery.objects.filter(pk__in=ids).update(created_at=NIGHT - timedelta(days=40))
    return ids


def _deliveries_gone(ids):
    return set(ids) - set(WebhookDelivery.objects.values_list("pk", flat=True))


def _expiring_soon(n):
    _subscription()
    members = [MemberFactory() for _ in range(n)]
    for member in members:
        ledger_services.points_earn(
            member=member, points=40, at=BEFORE, expires_at=NIGHT + timedelta(days=29, hours=12)
        )
    return [member.pk for member in members]


def _announced(ids):
    public_ids = dict(Member.objects.filter(pk__in=ids).values_list("public_id", "pk"))
    announced = WebhookDelivery.objects.filter(event_type="points.expiring_soon").values_list(
        "payload__data__member", flat=True
    )
    return {public_ids[p] for p in public_ids if str(p) in set(announced)}


@dataclass(frozen=True)
class Job:
    coordinator: object
    chunk: object
    make: Callable[[int], list[int]]
    done: Callable[[list[int]], set[int]]
    moment: str = NIGHT.isoformat()
    # The expiring-soon announcement lists the same members again all day (a subscription
    # added since gets its own announcement); its dedupe key makes the repeat a no-op.
    lists_done_again: bool = False


JOBS = {
    "points expiry": Job(
        ledger_tasks.points_expire, ledger_tasks.points_expire_chunk, _expiring_accounts, _expired
    ),
    "pending points maturation": Job(
        ledger_tasks.points_mature, ledger_tasks.points_mature_chunk, _pending, _matured
    ),
    "holds time-out": Job(
        ledger_tasks.holds_expire, ledger_tasks.holds_expire_chunk, _holds, _holds_released
    ),
    "reward reservations expiry": Job(
        reward_tasks.reservations_expire_task,
        reward_tasks.reservations_expire_chunk,
        _reservations,
        _reservations_released,
    ),
    "voucher codes expiry": Job(
        reward_tasks.voucher_codes_expire_task,
        reward_tasks.voucher_codes_expire_chunk,
        _voucher_codes,
        _codes_expired,
    ),
    "birthday points": Job(
        campaign_tasks.birthdays_reward,
        campaign_tasks.birthdays_reward_chunk,
        _birthdays,
        _birthdays_rewarded,
        moment="2026-12-02",
    ),
    "tier recalculation": Job(
        campaign_tasks.tiers_recalculate_task,
        campaign_tasks.tiers_recalculate_chunk,
        _climbers,
        _tiers_moved,
    ),
    "idempotency keys purge": Job(
        site_tasks.idempotency_records_purge,
        site_tasks.idempotency_records_purge_chunk,
        _idempotency_records,
        _records_gone,
    ),
    "webhook deliveries purge": Job(
        site_tasks.webhook_deliveries_purge,
        site_tasks.webhook_deliveries_purge_chunk,
        _old_deliveries,
        _deliveries_gone,
    ),
    "points expiring soon webhooks": Job(
        site_tasks.points_expiring_soon_notify,
        site_tasks.points_expiring_soon_notify_chunk,
        _expiring_soon,
        _announced,
        lists_done_again=True,
    ),
}


@pytest.fixture(autouse=True)
def _small_chunks(settings, monkeypatch):
    settings.LOYALTY_JOB_CHUNK_SIZE = SIZE
    settings.LOYALTY_WEBHOOK_CACHE_SECONDS = 0
    settings.LOYALTY_WEBHOOK_EXPIRING_DAYS = 30
    webhooks.subscriptions_cache_clear()
    monkeypatch.setattr(webhooks, "_schedule", lambda ids: None)  # no HTTP in these tests
    yield
    webhooks.subscriptions_cache_clear()


@pytest.fixture(params=list(JOBS), ids=list(JOBS))
def job(request):
    return JOBS[request.param]


def _make(job: Job, n: int = ROWS) -> list[int]:
    with time_machine.travel(BEFORE, tick=False):
        return job.make(n)


def _recording(job: Job, monkeypatch, *, lose: int | None = None) -> list[tuple[list, str]]:
    """The chunks the coordinator sends, as (ids, moment); the chunk numbered ``lose`` is
    dropped (once) as if its message were lost with a worker: it never runs."""
    sent, lost = [], []
    run = job.chunk.run

    def chunk_run(ids, moment):
        sent.append((list(ids), moment))
        if len(sent) - 1 == lose and not lost:
            lost.append(ids)
            return None
        return run(ids, moment)

    monkeypatch.setattr(job.chunk, "run", chunk_run)
    return sent


def _night(job: Job):
    with time_machine.travel(NIGHT, tick=False):
        return job.coordinator.delay().get()


def _world() -> tuple:
    """Everything a job may change, to see that a second run changes nothing."""
    return (
        list(Entry.objects.order_by("pk").values_list("pk", "amount")),
        list(Account.objects.order_by("pk").values_list("balance", "held", "pending")),
        list(PendingEarn.objects.order_by("pk").values_list("status")),
        list(Hold.objects.order_by("pk").values_list("status")),
        list(Redemption.objects.order_by("pk").values_list("status")),
        list(VoucherCode.objects.order_by("pk").values_list("status")),
        EngagementEvent.objects.count(),
        list(TierHistory.objects.order_by("pk").values_list("pk")),
        AuditEntry.objects.count(),
        list(IdempotencyRecord.objects.order_by("pk").values_list("pk")),
        list(WebhookDelivery.objects.order_by("pk").values_list("pk")),
    )


def test_the_coordinator_sends_one_chunk_per_chunk_size_of_due_rows_with_one_moment(
    job, monkeypatch
):
    due = _make(job)
    sent = _recording(job, monkeypatch)
    assert _night(job) == CHUNKS
    assert [ids for ids, _moment in sent] == [due[i : i + SIZE] for i in range(0, ROWS, SIZE)]
    assert {moment for _ids, moment in sent} == {job.moment}
    assert job.done(due) == set(due)
    if not job.lists_done_again:
        assert _night(job) == 0  # nothing left due: no chunk at all


def test_a_chunk_processes_only_its_own_ids(job):
    due = _make(job)
    job.chunk.delay(due[:SIZE], job.moment).get()
    assert job.done(due) == set(due[:SIZE])


def test_a_chunk_run_twice_does_nothing_the_second_time(job):
    due = _make(job, SIZE)
    first = job.chunk.delay(due, job.moment).get()
    assert first
    after_first = _world()
    second = job.chunk.delay(due, job.moment).get()
    assert not (any(second.values()) if isinstance(second, dict) else second)
    assert _world() == after_first
    assert job.done(due) == set(due)


def test_a_lost_chunk_leaves_only_its_own_rows_for_the_next_run(job, monkeypatch):
    due = _make(job)
    sent = _recording(job, monkeypatch, lose=1)
    assert _night(job) == CHUNKS
    lost = sent[1][0]
    assert job.done(due) == set(due) - set(lost)
    sent.clear()
    before = _world()
    if job.lists_done_again:
        assert _night(job) == CHUNKS
    else:
        assert _night(job) == 1  # the next run: the lost chunk's rows, and only those
        assert sent[0][0] == lost
    assert job.done(due) == set(due)
    assert _world() != before


def test_the_reconciliation_checks_every_account_in_chunks_and_logs_each_mismatch(
    monkeypatch, caplog
):
    members = [_member_with(40) for _ in range(ROWS - 1)]
    broken = members[3].account
    Account.objects.filter(pk=broken.pk).update(balance=41)  # behind the services' back
    results = []
    run = ledger_tasks.ledger_reconcile_chunk.run

    def chunk_run(ids, moment=None, **kwargs):  # run_id: the stored ReconciliationRun
        results.append((list(ids), run(ids, moment, **kwargs)))
        return results[-1][1]

    monkeypatch.setattr(ledger_tasks.ledger_reconcile_chunk, "run", chunk_run)
    with caplog.at_level(logging.ERROR, logger="ledger.tasks"):
        assert ledger_tasks.ledger_reconcile.delay().get() == CHUNKS
    accounts = [m.account.pk for m in members]
    assert [ids for ids, _found in results] == [accounts[:2], accounts[2:4], accounts[4:]]
    assert [found for _ids, found in results] == [0, 1, 0]
    flagged = [r.account_id for r in caplog.records if r.getMessage() == "ledger mismatch"]
    assert flagged == [broken.pk]
    # A chunk checks only its own accounts.
    assert ledger_tasks.ledger_reconcile_chunk.delay(accounts[:2]).get() == 0


def test_chunks_send_sends_nothing_for_nothing_due():
    class Task:
        def delay(self, *args):  # pragma: no cover - must not be called
            raise AssertionError(args)

    assert chunks_send(Task(), [], at=NIGHT) == 0
