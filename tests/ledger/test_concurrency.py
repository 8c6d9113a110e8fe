"""Real concurrency on PostgreSQL: many threads, each with its own connection."""

import hashlib
import random
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.db.models import Sum

from ledger import errors, services
from ledger.models import Account, AdjustmentRequest, Entry, Hold, IdempotencyRecord, Lot
from loyalty_site.errors import DomainError
from tests.factories import MemberFactory, UserFactory
from tests.ledger.concurrency import run_together

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

THREADS = 16
OPS_PER_THREAD = 125
RETRY_SHARE = 0.25


def _fingerprint(op) -> str:
    return hashlib.sha256(repr(sorted((k, str(v)) for k, v in op.items())).encode()).hexdigest()


def _api_call(op):
    """What the channel API's `idempotent` decorator does: claim the key, write, store the answer.

    The claim is the only guard against a second write: a retry waits on the claim's unique index
    until the first transaction commits, then replays its answer. A refusal is stored in the same
    transaction here (the decorator stores it right after, in one of its own); it wrote nothing.
    """
    kind, key = op["kind"], op["key"]
    with transaction.atomic():
        record = services.idempotency_claim(channel="pos", key=key, fingerprint=_fingerprint(op))
        if record is not None:
            return "replay", record.response_status, record.response_body
        try:
            if kind == "earn":
                entry = services.points_earn(
                    member=op["member"],
                    points=op["points"],
                    channel="pos",
                )
                body = {"entries": [entry.pk]}
            elif kind == "redeem":
                entry = services.points_redeem(
                    member=op["member"],
                    points=op["points"],
                    channel="pos",
                )
                body = {"entries": [entry.pk]}
            elif kind == "transfer":
                out, into = services.points_transfer(
                    source=op["member"],
                    target=op["target"],
                    points=op["points"],
                    reason="share",
                    channel="pos",
                )
                body = {"entries": [out.pk, into.pk]}
            else:
                entry = services.points_reverse(
                    entry=op["entry"],
                    points=op["points"],
                    reason="return",
                    channel="pos",
                )
                body = {"entries": [entry.pk]}
            status = 201
        except DomainError as exc:
            status, body = 409, {"code": exc.code}
        services.idempotency_store(
            channel="pos", key=key, response_status=status, response_body=body
        )
        return "fresh", status, body


def test_mixed_traffic_with_retried_keys_keeps_every_invariant(assert_reconciled):
    rng = random.Random(7)
    members = [MemberFactory() for _ in range(8)]
    seeds = []
    for member in members:
        for _ in range(5):
            seeds.append(services.points_earn(member=member, points=100, channel="setup"))
    setup_entries = Entry.objects.count()

    ops = []
    for n in range(THREADS * OPS_PER_THREAD):
        kind = rng.choices(["earn", "redeem", "transfer", "reverse"], [35, 35, 20, 10])[0]
        member = rng.choice(members)
        op = {"kind": kind, "key": f"op-{n}", "member": member, "points": rng.randint(1, 60)}
        if kind == "transfer":
            op["target"] = rng.choice([m for m in members if m != member])
        if kind == "reverse":
            op["entry"] = rng.choice(seeds)
            op["points"] = rng.randint(1, 15)
        ops.append(op)
    # Each thread gets its share; a quarter of the requests is retried by another thread.
    queues = [[] for _ in range(THREADS)]
    for n, op in enumerate(ops):
        queues[n % THREADS].append(op)
        if rng.random() < RETRY_SHARE:
            queues[(n + rng.randint(1, THREADS - 1)) % THREADS].append(op)
    for queue in queues:
        rng.shuffle(queue)

    outcomes = []
    lock = threading.Lock()

    def worker(queue):
        def run():
            mine = [(op, _api_call(op)) for op in queue]
            with lock:
                outcomes.extend(mine)

        return run

    results = run_together(*(worker(q) for q in queues))
    assert [r for r in results if isinstance(r, BaseException)] == []

    fresh = [(op, body) for op, (how, status, body) in outcomes if how == "fresh"]
    replays = [(op, body) for op, (how, status, body) in outcomes if how == "replay"]
    by_key = Counter(op["key"] for op, _body in fresh)
    # Every request ran exactly once; every retry got the first answer.
    assert set(by_key) == {op["key"] for op in ops} and max(by_key.values()) == 1
    first_answer = {op["key"]: body for op, body in fresh}
    assert all(first_answer[op["key"]] == body for op, body in replays)
    written = sum(len(body.get("entries", [])) for _op, body in fresh)
    assert Entry.objects.count() - setup_entries == written
    assert IdempotencyRecord.objects.count() == len(ops)

    # No debit other than a reverse left a negative balance; each account's chain adds up.
    assert (
        not Entry.objects.filter(amount__lt=0, balance_after__lt=0).exclude(kind="reverse").exists()
    )
    for account in Account.objects.all():
        running = 0
        for amount, after in account.entries.order_by("id").values_list("amount", "balance_after"):
            running += amount
            assert after == running
    assert_reconciled()

    refusals = Counter(body.get("code") for _op, body in fresh if "code" in body)
    print(
        f"\nchecked {len(ops)} requests ({len(replays)} retries replayed), {written} entries, "
        f"{Account.objects.count()} accounts; refusals: {dict(refusals)}; "
        f"total balance {Account.objects.aggregate(s=Sum('balance'))['s']}"
    )


def test_opposite_transfers_do_not_deadlock(assert_reconciled):
    alice, bob = MemberFactory(), MemberFactory()
    services.points_earn(member=alice, points=1000)
    services.points_earn(member=bob, points=1000)

    def move(source, target):
        def run():
            for _ in range(15):
                services.points_transfer(source=source, target=target, points=3, reason="x")

        return run

    results = run_together(*[move(alice, bob), move(bob, alice)] * 3)
    assert [r for r in results if isinstance(r, BaseException)] == []
    assert Account.objects.aggregate(s=Sum("balance"))["s"] == 2000
    assert Entry.objects.filter(kind="transfer").count() == 2 * 15 * 6
    assert_reconciled()


def test_expiry_run_twice_at_once_expires_each_lot_once(assert_reconciled):
    past = datetime.now(UTC) - timedelta(days=1)
    members = [MemberFactory() for _ in range(20)]
    for member in members:
        services.points_earn(member=member, points=40, expires_at=past)
        services.points_earn(member=member, points=30, expires_at=past)
        services.points_redeem(member=member, points=50)  # 40 from the first lot, 10 from the 2nd

    results = run_together(services.points_expire, services.points_expire)
    # How the two runs share the accounts depends on timing; together they expire each lot once.
    assert all(isinstance(r, int) for r in results), results
    assert sum(results) == 20 * 20
    expired = Entry.objects.filter(kind="expire")
    assert expired.count() == 20
    assert set(expired.values_list("amount", flat=True)) == {-20}
    assert expired.values("reference").distinct().count() == 20
    assert not Lot.objects.filter(remaining__gt=0).exists()
    assert services.points_expire() == 0
    assert_reconciled()


def test_holds_post_void_and_timeout_race_to_one_end(assert_reconciled):
    member = MemberFactory()
    services.points_earn(member=member, points=10_000)
    later = datetime.now(UTC) + timedelta(days=1)
    ends = Counter()
    for _round in range(12):
        hold = services.hold_place(member=member, points=25, expires_at=later - timedelta(hours=1))
        results = run_together(
            lambda h=hold: services.hold_post(hold=Hold.objects.get(pk=h.pk)),
            lambda h=hold: services.hold_void(hold=Hold.objects.get(pk=h.pk)),
            lambda: services.holds_expire(now=later),
            lambda h=hold: services.hold_void(hold=Hold.objects.get(pk=h.pk)),
        )
        hold.refresh_from_db()
        ends[hold.status] += 1
        assert hold.status != Hold.Status.OPEN
        losers = [r for r in results if isinstance(r, errors.HoldNotOpen)]
        winners = [r for r in results if r not in losers and r != 0]
        assert len(winners) == 1, results
        account = Account.objects.get(member=member)
        open_held = Hold.objects.filter(account=account, status="open").aggregate(s=Sum("points"))
        assert account.held == (open_held["s"] or 0) == 0
        assert account.available == account.balance - account.held
        assert Entry.objects.filter(hold__pk=hold.pk).count() == (hold.status == "posted")
    print(f"\nhold outcomes: {dict(ends)}")
    assert_reconciled()


def test_concurrent_approvals_post_exactly_one_entry(settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 10
    member = MemberFactory()
    clerk = UserFactory()
    approvers = [UserFactory() for _ in range(4)]
    request = services.points_adjust(member=member, points=500, reason="lost card", actor=clerk)
    results = run_together(
        *[
            lambda a=a: services.adjustment_approve(
                request=AdjustmentRequest.objects.get(pk=request.pk), actor=a
            )
            for a in approvers
        ],
        lambda: services.adjustment_approve(
            request=AdjustmentRequest.objects.get(pk=request.pk), actor=clerk
        ),
    )
    assert sum(isinstance(r, Entry) for r in results) == 1
    assert all(isinstance(r, Entry | errors.RequestNotPending) for r in results[:-1]), results
    # The requester is refused either way: as the requester, or because another approved first.
    assert isinstance(results[-1], errors.SelfApproval | errors.RequestNotPending)
    assert Entry.objects.filter(kind="adjust").count() == 1
    assert Account.objects.get(member=member).balance == 500


def test_pending_points_mature_exactly_once_at_their_time(assert_reconciled):
    window_end = datetime(2026, 6, 1, 12, tzinfo=UTC)
    members = [MemberFactory() for _ in range(15)]
    with time_machine.travel(window_end - timedelta(days=14), tick=False):
        for member in members:
            services.points_earn(member=member, points=20, pending_until=window_end)
            services.points_earn(member=member, points=5)
    with time_machine.travel(window_end - timedelta(seconds=1), tick=False):
        assert services.points_mature() == 0
        assert Account.objects.aggregate(s=Sum("pending"))["s"] == 15 * 20
    with time_machine.travel(window_end + timedelta(seconds=1), tick=False):
        results = run_together(
            services.points_mature, services.points_mature, services.points_mature
        )
        assert sum(results) == 15, results
    assert Entry.objects.filter(kind="earn", amount=20).count() == 15
    assert Account.objects.aggregate(s=Sum("pending"))["s"] == 0
    assert set(Account.objects.values_list("balance", flat=True)) == {25}
    connection.close()
    assert_reconciled()
