"""The SQLite append-only triggers on ledger_entry, shared by migrations 0002 and 0005-0007."""

SQLITE_FORWARD = [
    """
    CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: UPDATE refused on ledger_entry');
    END;
    """,
    """
    CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry
    BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: DELETE refused on ledger_entry');
    END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS ledger_entry_no_update;",
    "DROP TRIGGER IF EXISTS ledger_entry_no_delete;",
]


def recreate_sqlite_triggers(apps, schema_editor):
    """After a migration that rebuilds ledger_entry on SQLite (the rebuild drops its triggers)."""
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_BACKWARD + SQLITE_FORWARD:
            schema_editor.execute(statement)
