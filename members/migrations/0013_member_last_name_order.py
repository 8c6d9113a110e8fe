"""The member search's last-name order: lower(last_name) compared byte by byte, then id
(PostgreSQL only, as 0003's prefix indexes).

``members.selectors.NameOrder`` is the same expression: a last-name prefix is a range of this
index, read in the order the search page shows, so a page of "de J" reads a page of rows, not
every "de Jong". Built without locking the table's writes, hence outside a transaction.
"""

from django.db import migrations

CREATE = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS member_last_name_order "
    'ON members_member ((lower(last_name) COLLATE "C"), id)'
)
DROP = "DROP INDEX CONCURRENTLY IF EXISTS member_last_name_order"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("members", "0012_status_rare_index"),
    ]

    operations = [migrations.RunPython(create_index, drop_index)]
