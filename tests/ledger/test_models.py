"""What the database itself refuses: the balance rule, append-only entries, four eyes."""

import pytest
from django.db import IntegrityError, connection, transaction

from ledger import services
from ledger.models import Account, AdjustmentRequest, Entry
from ledger.services.posting import account_for
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_database_refuses_a_debit_below_zero_that_is_not_a_reverse():
    member = MemberFactory()
    account = account_for(member)
    with pytest.raises(IntegrityError, match="entry_debit_not_below_zero"), transaction.atomic():
        Entry.objects.create(account=account, kind="redeem", amount=-5, balance_after=-5)
    Entry.objects.create(account=account, kind="reverse", amount=-5, balance_after=-5)
    assert list(Entry.objects.values_list("kind", "balance_after")) == [("reverse", -5)]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "statement", ["UPDATE ledger_entry SET amount = 1", "DELETE FROM ledger_entry"]
)
def test_trigger_refuses_raw_update_and_delete(statement):
    member = MemberFactory()
    services.points_earn(member=member, points=5)
    with pytest.raises(IntegrityError, match="append-only"), connection.cursor() as cursor:
        cursor.execute(statement)
    assert list(Entry.objects.values_list("amount", flat=True)) == [5]


def test_database_refuses_self_decided_request():
    member = MemberFactory()
    clerk = UserFactory()
    request = AdjustmentRequest.objects.create(
        account=account_for(member), points=5000, reason="x", requested_by=clerk
    )
    with pytest.raises(IntegrityError, match="adjreq_not_self_decided"), transaction.atomic():
        AdjustmentRequest.objects.filter(pk=request.pk).update(decided_by=clerk, status="rejected")
    request.refresh_from_db()
    assert (request.status, request.decided_by) == ("pending", None)


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
        " reason, reason_code, reason_params, explanation, created_at)"
        " VALUES (1, ?, ?, ?, '', '', '', '', '{}', '[]', 0)"
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
    account = Account.objects.create(member=MemberFactory())
    staff = UserFactory()
    for actor, reason in ((None, "goodwill"), (staff, "")):
        with (
            pytest.raises(IntegrityError, match="entry_adjust_has_actor_and_reason"),
            transaction.atomic(),
        ):
            Entry.objects.create(
                account=account, kind="adjust", amount=5, balance_after=5, actor=actor,
                reason=reason,
            )  # fmt: skip
    Entry.objects.create(
        account=account, kind="adjust", amount=5, balance_after=5, actor=staff, reason="goodwill"
    )
    assert list(account.entries.values_list("actor", "reason")) == [(staff.pk, "goodwill")]
