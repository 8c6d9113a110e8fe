"""Pending points cancellations (``ledger.models.finance.PendingCancellation``): append-only,
and filled for the pending points cancelled before they were recorded.

What the data allows: a fully cancelled row kept the points it had just before its last
cancellation, which is recorded at its ``resolved_at``, so a past pending figure says what it
said before this migration. A partial cancellation before this migration shrank its row and left
no trace of its size or date in the ledger, so for those rows a past figure stays at the size
after it (as before).
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

PG_FORWARD = """
CREATE OR REPLACE FUNCTION ledger_pending_cancellation_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'pending cancellations are append-only: ' || TG_OP
            || ' refused on ledger_pendingcancellation',
        ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_pending_cancellation_append_only
    BEFORE UPDATE OR DELETE ON ledger_pendingcancellation
    FOR EACH ROW EXECUTE FUNCTION ledger_pending_cancellation_refuse_change();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS ledger_pending_cancellation_append_only ON ledger_pendingcancellation;
DROP FUNCTION IF EXISTS ledger_pending_cancellation_refuse_change();
"""
SQLITE_FORWARD = [
    """
    CREATE TRIGGER ledger_pending_cancellation_no_update
    BEFORE UPDATE ON ledger_pendingcancellation
    BEGIN SELECT RAISE(ABORT,
        'pending cancellations are append-only: UPDATE refused on ledger_pendingcancellation');
    END;
    """,
    """
    CREATE TRIGGER ledger_pending_cancellation_no_delete
    BEFORE DELETE ON ledger_pendingcancellation
    BEGIN SELECT RAISE(ABORT,
        'pending cancellations are append-only: DELETE refused on ledger_pendingcancellation');
    END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS ledger_pending_cancellation_no_update;",
    "DROP TRIGGER IF EXISTS ledger_pending_cancellation_no_delete;",
]


def fill(apps, schema_editor):
    PendingEarn = apps.get_model("ledger", "PendingEarn")
    PendingCancellation = apps.get_model("ledger", "PendingCancellation")
    cancelled = PendingEarn.objects.filter(status="cancelled").values_list(
        "pk", "points", "resolved_at", "created_at"
    )
    PendingCancellation.objects.bulk_create(
        (
            PendingCancellation(pending_id=pk, points=points, at=resolved_at or created_at)
            for pk, points, resolved_at, created_at in cancelled.iterator(chunk_size=5000)
        ),
        batch_size=2000,
    )


def triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"no append-only trigger for database vendor {vendor!r}")


def triggers_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0018_entry_account_period_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="PendingCancellation",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("points", models.BigIntegerField(verbose_name="points")),
                ("at", models.DateTimeField(default=django.utils.timezone.now, verbose_name="at")),
                (
                    "pending",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="cancellations",
                        to="ledger.pendingearn",
                        verbose_name="pending points",
                    ),
                ),
            ],
            options={
                "verbose_name": "pending points cancellation",
                "verbose_name_plural": "pending points cancellations",
                "indexes": [models.Index(fields=["at"], name="pending_cancellation_at")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("points__gt", 0)),
                        name="pending_cancellation_points_gt_0",
                        violation_error_message="The number of points must be a positive whole number.",
                    )
                ],
            },
        ),
        # Fill first: backwards the trigger must go before the table.
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(triggers, triggers_drop, elidable=False),
    ]
