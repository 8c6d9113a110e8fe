"""How finance's reports ask PostgreSQL to run their queries.

A report's queries are a few aggregates with correlated subqueries whose row estimates are far
too high (an "as of" bound the planner cannot see through), so PostgreSQL compiles them with
its JIT, which costs more than the query: on the demo data 80 of the 100 ms of the debt query
were JIT code generation. ``report_reading`` turns the JIT off for one report's transaction
only (``SET LOCAL``), so nothing else the connection runs is affected.
"""

from __future__ import annotations

import functools

from django.db import connections, router, transaction

from ledger.models import Entry


def report_connection():
    """The connection a report's hand-written SQL reads on: where the router sends the
    ledger's reads (the read replica inside ``members.replica.on_replica()``)."""
    return connections[router.db_for_read(Entry)]


def report_reading(function):
    """Run ``function`` (a report: reads only) in a transaction without PostgreSQL's JIT, on
    the database its reads go to: the read replica inside ``members.replica.on_replica()``."""

    @functools.wraps(function)
    def reading(*args, **kwargs):
        reader = report_connection()
        if reader.vendor != "postgresql":
            return function(*args, **kwargs)
        with transaction.atomic(using=reader.alias):
            with reader.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
            return function(*args, **kwargs)

    return reading
