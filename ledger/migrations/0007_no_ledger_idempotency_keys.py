"""Entries and pending points lose their own idempotency key: the channel API claims a key once,
in an IdempotencyRecord (``idempotency_claim``), so nothing writes these columns any more.

On SQLite, dropping an entry column may rebuild ``ledger_entry``, and a rebuild drops its
triggers: the append-only triggers are created again right after, as in 0005 and 0006.
"""

from django.db import migrations

from ledger.migrations import _append_only


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0006_indexes_not_repeated'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='entry',
            name='entry_channel_idempotency_key_unique',
        ),
        migrations.RemoveConstraint(
            model_name='pendingearn',
            name='pending_channel_idempotency_key_unique',
        ),
        migrations.RemoveField(
            model_name='entry',
            name='idempotency_key',
        ),
        migrations.RemoveField(
            model_name='pendingearn',
            name='idempotency_key',
        ),
        migrations.RunPython(_append_only.recreate_sqlite_triggers, migrations.RunPython.noop),
    ]
