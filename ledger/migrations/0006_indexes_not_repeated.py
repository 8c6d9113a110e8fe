"""No separate index on entry.account and purchase.member: entry_account_recent and
purchase_member_recent start with those columns, and every earn wrote both twice.

On SQLite, altering an entry field rebuilds ``ledger_entry`` and the rebuild drops its triggers:
the append-only triggers are created again right after, as in 0005.
"""

import django.db.models.deletion
from django.db import migrations, models

from ledger.migrations import _append_only


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0005_entry_adjust_has_actor_and_reason'),
        ('members', '0004_indexes_not_repeated'),
    ]

    operations = [
        migrations.AlterField(
            model_name='entry',
            name='account',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='ledger.account', verbose_name='account'),
        ),
        migrations.AlterField(
            model_name='purchase',
            name='member',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='purchases', to='members.member', verbose_name='member'),
        ),
        migrations.RunPython(_append_only.recreate_sqlite_triggers, migrations.RunPython.noop),
    ]
