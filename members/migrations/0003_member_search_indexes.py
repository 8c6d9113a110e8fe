"""Prefix-search indexes for the admin's member search (PostgreSQL only).

The search runs ``lower(column) LIKE 'term%'``; a btree on ``lower(column) text_pattern_ops``
serves that in any collation. SQLite (the embedded mode, small programmes) does without.
"""

from django.db import migrations

COLUMNS = ("last_name", "first_name", "email")


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS member_{column}_prefix "
            f"ON members_member (lower({column}) text_pattern_ops)"
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for column in COLUMNS:
        schema_editor.execute(f"DROP INDEX IF EXISTS member_{column}_prefix")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0002_member_fields_cards_consents_tiers"),
    ]

    operations = [migrations.RunPython(create_indexes, drop_indexes)]
