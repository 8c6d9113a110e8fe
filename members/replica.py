"""Reads that may go to a read replica: reports and exports (``DATABASE_REPLICA_URL``).

``with on_replica():`` marks a block whose reads the router sends to the ``replica`` database,
when one is configured; everything else reads and writes the default database. Writes always
go to the default database, inside the block too (a job's progress, its file, an audit row).
Inside a transaction on the default database reads stay there: a transaction reads its own
writes, and the rows it has locked, which a replica (a few hundred milliseconds behind) would
not show. A report or export run from a page or a job is not in a transaction, so it reads the
replica; the tests, which run inside one, read the default database unless they commit.

A replica lags: a block marked here must not need a row written a moment ago (the job row
itself is read outside, the dashboard's previous day too).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"

_reads_on_replica: ContextVar[bool] = ContextVar("reads_on_replica", default=False)


def replica_configured() -> bool:
    return REPLICA in connections.settings


@contextmanager
def on_replica() -> Iterator[None]:
    token = _reads_on_replica.set(True)
    try:
        yield
    finally:
        _reads_on_replica.reset(token)


class ReplicaRouter:
    """``DATABASE_ROUTERS``: reads in an ``on_replica()`` block go to the replica."""

    def db_for_read(self, model, **hints):
        if (
            _reads_on_replica.get()
            and replica_configured()
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block
        ):
            return REPLICA
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        # The replica holds the same rows: an object read there may refer to one read here.
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        # The replica replays the default database's changes; nothing migrates it directly.
        return db == DEFAULT_DB_ALIAS
