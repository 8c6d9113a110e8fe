"""An index added to a big table without locking its writes, on either database.

``CREATE INDEX`` holds a lock that blocks every insert into the table until the index is built:
minutes on a ledger of millions of rows, while tills wait. On PostgreSQL this operation builds
it with ``CREATE INDEX CONCURRENTLY`` (Django's ``AddIndexConcurrently``: the migration must say
``atomic = False``); SQLite has no such statement and no such table sizes, so there it is a plain
``AddIndex``. Lives in members, the lowest app, so every app's migrations can use it.

A concurrent build that fails (a deadlock, a cancelled migrate) leaves an INVALID index behind;
drop it (``DROP INDEX CONCURRENTLY name``) and migrate again.
"""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class AddIndexWithoutLock(AddIndexConcurrently):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return AddIndex.database_forwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return AddIndex.database_backwards(self, app_label, schema_editor, from_state, to_state)
        return super().database_backwards(app_label, schema_editor, from_state, to_state)


class RemoveIndexWithoutLock(RemoveIndexConcurrently):
    """The same for dropping an index (``DROP INDEX CONCURRENTLY``): a plain drop waits for
    every transaction on the table and blocks its inserts meanwhile."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return RemoveIndex.database_forwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor != "postgresql":
            return RemoveIndex.database_backwards(
                self, app_label, schema_editor, from_state, to_state
            )
        return super().database_backwards(app_label, schema_editor, from_state, to_state)
