from datetime import UTC, datetime, timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test import override_settings

from ledger import errors, services
from ledger.models import AdjustmentRequest, Entry, Hold, Lot, PendingEarn
from ledger.selectors import balance_summary, entries_for, points_expiring_soon
from ledger.services.posting import account_for
from members.models import Member
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_earn_and_redeem_keep_balance_entries_and_lots(assert_reconciled):
    member = MemberFactory()
    services.points_earn(member=member, points=100, channel="pos", at=T0)
    services.points_earn(member=member, points=50, channel="pos", at=T0 + timedelta(days=1))
    entry = services.points_redeem(member=member, points=120, channel="pos")

    assert entry.kind == Entry.Kind.REDEEM and entry.amount == -120 and entry.balance_after == 30
    assert balance_summary(member=member) == {
        "balance": 30,
        "pending": 0,
        "held": 0,
        "available": 30,
    }
    # FIFO: the first lot is empty, the second has 30 left.
    assert list(Lot.objects.order_by("earned_at").values_list("remaining", flat=True)) == [0, 30]
    assert [e.amount for e in entries_for(member=member)] == [-120, 50, 100]
    assert_reconciled()


def test_redeem_refusals():
    member = MemberFactory()
    services.points_earn(member=member, points=10)
    with pytest.raises(errors.InsufficientPoints):
        services.points_redeem(member=member, points=11)
    with pytest.raises(errors.InvalidPoints):
        services.points_redeem(member=member, points=0)
    Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)
    with pytest.raises(errors.MemberBlocked) as exc:
        services.points_redeem(member=member, points=5)
    assert exc.value.code == "member_blocked"
    assert balance_summary(member=member)["balance"] == 10


def test_reverse_may_go_below_zero_and_debt_blocks_redeem(assert_reconciled):
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100)
    services.points_redeem(member=member, points=80)
    services.points_reverse(entry=earn, points=60, reason="return")
    assert balance_summary(member=member)["balance"] == -40
    with pytest.raises(errors.AccountInDebt) as exc:
        services.points_redeem(member=member, points=1)
    assert exc.value.code == "account_in_debt"
    with pytest.raises(errors.AccountInDebt):
        services.hold_place(member=member, points=1)
    # Earning pays the debt first: only 10 of 50 land in the lot.
    services.points_earn(member=member, points=50)
    assert balance_summary(member=member)["balance"] == 10
    assert Lot.objects.filter(account__member=member, remaining__gt=0).get().remaining == 10
    # The rest of the earn can be reversed once; more is refused.
    services.points_reverse(entry=earn, reason="return")
    with pytest.raises(Exception) as exc:
        services.points_reverse(entry=earn, points=1, reason="return")
    assert getattr(exc.value, "code", "") == "reverse_exceeds_entry"
    assert_reconciled()


def test_database_refuses_a_debit_below_zero_that_is_not_a_reverse():
    member = MemberFactory()
    account = account_for(member)
    with pytest.raises(IntegrityError), transaction.atomic():
        Entry.objects.create(account=account, kind="redeem", amount=-5, balance_after=-5)
    Entry.objects.create(account=account, kind="reverse", amount=-5, balance_after=-5)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "statement", ["UPDATE ledger_entry SET amount = 1", "DELETE FROM ledger_entry"]
)
def test_trigger_refuses_raw_update_and_delete(statement):
    member = MemberFactory()
    services.points_earn(member=member, points=5)
    with pytest.raises(Exception) as exc, connection.cursor() as cursor:
        cursor.execute(statement)
    assert "append-only" in str(exc.value)
    assert list(Entry.objects.values_list("amount", flat=True)) == [5]


def test_transfer_moves_points_and_keeps_expiry(assert_reconciled):
    alice, bob = MemberFactory(), MemberFactory()
    services.points_earn(member=alice, points=100, at=T0)
    out, into = services.points_transfer(source=alice, target=bob, points=70, reason="gift")
    assert (out.amount, into.amount, into.refers_to_id) == (-70, 70, out.pk)
    assert balance_summary(member=alice)["balance"] == 30
    assert balance_summary(member=bob)["balance"] == 70
    alice_lot = Lot.objects.get(account__member=alice)
    assert Lot.objects.get(account__member=bob).expires_at == alice_lot.expires_at
    with pytest.raises(errors.InsufficientPoints):
        services.points_transfer(source=alice, target=bob, points=31, reason="gift")
    assert_reconciled()


def _earn_once(*, channel: str, key: str, member, points: int) -> dict:
    """An earn behind an Idempotency-Key as the API does it: claim, write, store, one commit."""
    fingerprint = f"earn {member.pk} {points}"
    with transaction.atomic():
        record = services.idempotency_claim(channel=channel, key=key, fingerprint=fingerprint)
        if record is not None:
            return record.response_body
        entry = services.points_earn(member=member, points=points, channel=channel)
        body = {"entry": entry.pk, "balance": entry.balance_after}
        services.idempotency_store(
            channel=channel, key=key, response_status=201, response_body=body
        )
        return body


def test_a_keyed_earn_retried_replays_and_another_request_with_its_key_conflicts():
    member, other = MemberFactory(), MemberFactory()
    first = _earn_once(channel="pos", key="k1", member=member, points=10)
    again = _earn_once(channel="pos", key="k1", member=member, points=10)
    assert again == first == {"entry": Entry.objects.get().pk, "balance": 10}
    with pytest.raises(errors.IdempotencyConflict) as exc:
        _earn_once(channel="pos", key="k1", member=member, points=11)
    assert exc.value.code == "idempotency_conflict"
    with pytest.raises(errors.IdempotencyConflict):
        _earn_once(channel="pos", key="k1", member=other, points=10)
    # The same key from another channel is another request.
    assert _earn_once(channel="app", key="k1", member=member, points=10)["balance"] == 20
    assert balance_summary(member=member)["balance"] == 20
    assert balance_summary(member=other)["balance"] == 0
    assert Entry.objects.count() == 2


def test_idempotency_claim_and_store():
    assert services.idempotency_claim(channel="pos", key="a", fingerprint="f1") is None
    services.idempotency_store(channel="pos", key="a", response_status=201, response_body={"x": 1})
    record = services.idempotency_claim(channel="pos", key="a", fingerprint="f1")
    assert (record.response_status, record.response_body) == (201, {"x": 1})
    with pytest.raises(errors.IdempotencyConflict):
        services.idempotency_claim(channel="pos", key="a", fingerprint="f2")
    assert services.idempotency_claim(channel="app", key="a", fingerprint="f2") is None
    with pytest.raises(errors.IdempotencyInProgress):
        services.idempotency_claim(channel="app", key="a", fingerprint="f2")


def test_idempotency_purge():
    services.idempotency_claim(channel="pos", key="old", fingerprint="f")
    with override_settings(LOYALTY_IDEMPOTENCY_TTL_HOURS=1):
        assert services.idempotency_purge(now=datetime.now(UTC) + timedelta(hours=2)) == 1


def test_small_adjustment_posts_large_one_waits_for_a_second_person(settings, assert_reconciled):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    member = MemberFactory()
    clerk, supervisor = UserFactory(), UserFactory()
    with pytest.raises(errors.ReasonRequired):
        services.points_adjust(member=member, points=10, reason="  ", actor=clerk)
    small = services.points_adjust(member=member, points=100, reason="goodwill", actor=clerk)
    assert isinstance(small, Entry) and small.actor == clerk
    request = services.points_adjust(member=member, points=500, reason="lost receipt", actor=clerk)
    assert isinstance(request, AdjustmentRequest)
    assert balance_summary(member=member)["balance"] == 100

    with pytest.raises(errors.SelfApproval) as exc:
        services.adjustment_approve(request=request, actor=clerk)
    assert exc.value.code == "self_approval"
    entry = services.adjustment_approve(request=request, actor=supervisor)
    assert entry.amount == 500 and entry.reason == "lost receipt"
    with pytest.raises(errors.RequestNotPending):
        services.adjustment_approve(request=request, actor=supervisor)
    assert Entry.objects.filter(kind=Entry.Kind.ADJUST).count() == 2
    assert balance_summary(member=member)["balance"] == 600
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("approved", supervisor)
    assert_reconciled()


def test_staff_debit_never_below_zero_and_reject(settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    member = MemberFactory()
    clerk, supervisor = UserFactory(), UserFactory()
    services.points_earn(member=member, points=50)
    with pytest.raises(errors.InsufficientPoints):
        services.points_adjust(member=member, points=-51, reason="fix", actor=clerk)
    request = services.points_adjust(member=member, points=-500, reason="fraud", actor=clerk)
    with pytest.raises(errors.InsufficientPoints):
        services.adjustment_approve(request=request, actor=supervisor)
    services.adjustment_reject(request=request, actor=supervisor, reason="no")
    request.refresh_from_db()
    assert request.status == "rejected" and request.entry is None


def test_database_refuses_self_decided_request():
    member = MemberFactory()
    clerk = UserFactory()
    request = AdjustmentRequest.objects.create(
        account=account_for(member), points=5000, reason="x", requested_by=clerk
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        AdjustmentRequest.objects.filter(pk=request.pk).update(decided_by=clerk, status="rejected")


def test_hold_lifecycle(assert_reconciled):
    member = MemberFactory()
    services.points_earn(member=member, points=100)
    hold = services.hold_place(member=member, points=60, reference="r1")
    assert balance_summary(member=member) == {
        "balance": 100,
        "pending": 0,
        "held": 60,
        "available": 40,
    }
    with pytest.raises(errors.InsufficientPoints):
        services.points_redeem(member=member, points=41)
    entry = services.hold_post(hold=hold)
    assert entry.amount == -60 and hold.status == Hold.Status.POSTED
    with pytest.raises(errors.HoldNotOpen):
        services.hold_void(hold=hold)
    second = services.hold_place(member=member, points=40)
    services.hold_void(hold=second)
    assert balance_summary(member=member) == {
        "balance": 40,
        "pending": 0,
        "held": 0,
        "available": 40,
    }
    third = services.hold_place(member=member, points=10, expires_at=T0)
    assert services.holds_expire() == 1
    third.refresh_from_db()
    assert third.status == Hold.Status.EXPIRED
    assert services.holds_expire() == 0
    assert_reconciled()


def test_pending_points_and_cancel(assert_reconciled):
    member = MemberFactory()
    now = datetime.now(UTC)
    pending = services.points_earn(member=member, points=30, pending_until=now + timedelta(days=14))
    assert isinstance(pending, PendingEarn)
    assert balance_summary(member=member) == {
        "balance": 0,
        "pending": 30,
        "held": 0,
        "available": 0,
    }
    services.pending_cancel(pending=pending, points=10)
    assert services.points_mature(now=now) == 0
    assert services.points_mature(now=now + timedelta(days=15)) == 1
    assert balance_summary(member=member) == {
        "balance": 20,
        "pending": 0,
        "held": 0,
        "available": 20,
    }
    assert_reconciled()


def test_expiry_fifo_partial_lots(settings, assert_reconciled):
    settings.LOYALTY_EXPIRY_POLICY = "rolling"
    settings.LOYALTY_EXPIRY_MONTHS = 12
    member = MemberFactory()
    services.points_earn(member=member, points=100, at=T0)  # expires 2027-01-10
    services.points_earn(member=member, points=50, at=T0 + timedelta(days=60))  # 2027-03-11
    services.points_redeem(member=member, points=70)  # takes 70 of the oldest lot
    assert services.points_expire(now=datetime(2027, 1, 11, tzinfo=UTC)) == 30
    assert balance_summary(member=member)["balance"] == 50
    assert services.points_expire(now=datetime(2027, 1, 11, tzinfo=UTC)) == 0
    expire = Entry.objects.get(kind=Entry.Kind.EXPIRE)
    assert expire.amount == -30
    assert services.points_expire(now=datetime(2027, 3, 12, tzinfo=UTC)) == 50
    assert balance_summary(member=member)["balance"] == 0
    assert_reconciled()


def test_expiry_spares_held_points(settings, assert_reconciled):
    member = MemberFactory()
    services.points_earn(member=member, points=100, expires_at=T0 + timedelta(days=1), at=T0)
    hold = services.hold_place(member=member, points=40)
    assert services.points_expire() == 60
    services.hold_void(hold=hold)
    assert services.points_expire() == 40
    assert balance_summary(member=member)["balance"] == 0
    assert_reconciled()


def test_expiry_policies(settings):
    from ledger.expiry import expiry_for

    earned = datetime(2026, 3, 31, 10, tzinfo=UTC)
    settings.LOYALTY_EXPIRY_POLICY = "rolling"
    settings.LOYALTY_EXPIRY_MONTHS = 1
    assert expiry_for(earned) == datetime(2026, 4, 30, 10, tzinfo=UTC)
    settings.LOYALTY_EXPIRY_POLICY = "fixed"
    settings.LOYALTY_EXPIRY_MONTHS = 12
    settings.LOYALTY_EXPIRY_PERIOD_MONTHS = 12
    # Kept at least until 2027-03-31, then to the end of 2027 (local time).
    assert expiry_for(earned).astimezone().year in (2027, 2028)
    from django.utils import timezone

    assert timezone.localtime(expiry_for(earned)).replace(tzinfo=None) == datetime(2028, 1, 1)
    settings.LOYALTY_EXPIRY_POLICY = "none"
    assert expiry_for(earned) is None


def test_points_expiring_soon():
    member, other = MemberFactory(), MemberFactory()
    now = datetime.now(UTC)
    services.points_earn(member=member, points=10, expires_at=now + timedelta(days=5))
    services.points_earn(member=member, points=20, expires_at=now + timedelta(days=20))
    services.points_earn(member=other, points=7, expires_at=now + timedelta(days=100))
    rows = list(points_expiring_soon(days=30))
    assert rows == [{"member_id": member.pk, "points": 30, "first_expiry": rows[0]["first_expiry"]}]
    assert list(points_expiring_soon(days=7, member=member))[0]["points"] == 10
    assert list(points_expiring_soon(days=7, member=other)) == []


def test_purchase_and_returns():
    from decimal import Decimal

    member = MemberFactory()
    purchase, first = services.purchase_store_first(
        member=member,
        channel="pos",
        external_id="R1",
        amount=Decimal("30.00"),
        currency="eur",
        occurred_at=T0,
        lines=[{"sku": "A", "quantity": 2, "amount": "20.00"}, {"sku": "B", "amount": "10.00"}],
    )
    assert first is True
    assert purchase.currency == "EUR" and purchase.lines.count() == 2
    with pytest.raises(errors.DuplicatePurchase) as exc:
        services.purchase_store_first(
            member=member,
            channel="pos",
            external_id="R1",
            amount=Decimal("1"),
            currency="EUR",
            occurred_at=T0,
        )
    assert exc.value.code == "duplicate_purchase"
    line_a = purchase.lines.get(sku="A")
    partial = services.return_store(purchase=purchase, lines=[{"line": line_a, "quantity": 1}])
    assert partial.amount == Decimal("10.00")
    with pytest.raises(errors.ReturnExceedsPurchase):
        services.return_store(purchase=purchase, amount=Decimal("20.01"))
    rest = services.return_store(purchase=purchase, external_id="ret-2")
    assert rest.amount == Decimal("20.00")


def test_sqlite_gets_the_same_trigger_and_constraints():
    """The embedded mode's SQL, run on a scratch SQLite database with the ledger tables."""
    import importlib
    import sqlite3

    from django.db import connections
    from django.db.backends.sqlite3.base import DatabaseWrapper

    migration = importlib.import_module("ledger.migrations.0002_entry_append_only")
    wrapper = DatabaseWrapper(
        {
            **connections["default"].settings_dict,
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": ":memory:",
            "OPTIONS": {},
        },
        "ledger_scratch",
    )
    wrapper.ensure_connection()
    with wrapper.schema_editor(atomic=False) as editor:
        from ledger.models import Account, Entry, Lot

        for model in (Account, Entry, Lot):
            sql, params = editor.table_sql(model)
            editor.execute(sql, params)
        migration.forward(None, editor)
    raw = wrapper.connection
    raw.execute("PRAGMA foreign_keys = OFF")  # Only the ledger tables exist here.
    raw.execute(
        "INSERT INTO ledger_account (id, member_id, balance, pending, held, created_at,"
        " updated_at) VALUES (1, 1, 5, 0, 0, 0, 0)"
    )
    insert = (
        "INSERT INTO ledger_entry (account_id, kind, amount, balance_after, channel, reference,"
        " reason, explanation, created_at) VALUES (1, ?, ?, ?, '', '', '', '[]', 0)"
    )
    raw.execute(insert, ("earn", 5, 5))
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute(insert, ("redeem", -6, -1))
    raw.execute(insert, ("reverse", -6, -1))
    # Invariant 7: an adjustment without a staff user and a reason is refused.
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute(insert, ("adjust", 3, 2))
    for statement in ("UPDATE ledger_entry SET amount = 1", "DELETE FROM ledger_entry"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute(statement)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute(
            "INSERT INTO ledger_lot (account_id, entry_id, points, remaining, earned_at)"
            " VALUES (1, 1, 5, 6, 0)"
        )
    wrapper.close()


def test_migrated_sqlite_database_keeps_its_append_only_triggers(tmp_path):
    """Migrations that rebuild ledger_entry on SQLite (a new CHECK) must not lose the triggers."""
    import os
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "CELERY_BROKER_URL"}
    }
    environment["LOYALTY_VAR_DIR"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "ledger", "--noinput", "-v", "0"],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    database = sqlite3.connect(tmp_path / "db.sqlite3")
    triggers = {
        name
        for (name,) in database.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'ledger_entry'"
        )
    }
    assert triggers == {"ledger_entry_no_update", "ledger_entry_no_delete"}
    table_sql = database.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ledger_entry'"
    ).fetchone()[0]
    assert "entry_adjust_has_actor_and_reason" in table_sql
    database.close()


@pytest.mark.django_db(transaction=True)
def test_database_refuses_an_adjustment_entry_without_actor_or_reason():
    from django.db import IntegrityError, transaction

    from ledger.models import Account, Entry
    from tests.factories import MemberFactory, UserFactory

    account = Account.objects.create(member=MemberFactory())
    staff = UserFactory()
    for actor, reason in ((None, "goodwill"), (staff, "")):
        with pytest.raises(IntegrityError), transaction.atomic():
            Entry.objects.create(
                account=account, kind="adjust", amount=5, balance_after=5, actor=actor,
                reason=reason,
            )  # fmt: skip
    Entry.objects.create(
        account=account, kind="adjust", amount=5, balance_after=5, actor=staff, reason="goodwill"
    )
