"""Invariant 7 in the database: an adjustment entry has a staff user and a reason.

SQLite cannot add a CHECK to an existing table: Django rebuilds ``ledger_entry``, and the rebuild
drops the table's triggers. The append-only triggers of 0002 are therefore created again right
after, on SQLite only (PostgreSQL adds the constraint in place and keeps its trigger).
"""

from django.db import migrations, models

from ledger.migrations import _append_only


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0004_purchase_card"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="entry",
            constraint=models.CheckConstraint(
                condition=models.Q(("kind", "adjust"), _negated=True)
                | models.Q(("actor__isnull", False), models.Q(("reason", ""), _negated=True)),
                name="entry_adjust_has_actor_and_reason",
            ),
        ),
        migrations.RunPython(_append_only.recreate_sqlite_triggers, migrations.RunPython.noop),
    ]
