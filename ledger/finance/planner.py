"""Where finance's reports read, and how PostgreSQL plans them.

A report's queries are a few aggregates with correlated subqueries whose row estimates are far
too high (an "as of" bound the planner cannot see through), so PostgreSQL would compile them
with its JIT, which costs more than the query: on the demo data 80 of the 100 ms of the debt
query were JIT code generation. ``report_reading`` runs one report as a big read
(``members.database.big_read``: no JIT, each statement planned for its values) in a
transaction of its own, so nothing else the connection runs is affected.
"""

from __future__ import annotations

import functools

from django.db import connections, router

from ledger.models import Entry
from members.database import big_read


def report_connection():
    """The connection a report's hand-written SQL reads on: where the router sends the
    ledger's reads (the read replica inside ``members.replica.on_replica()``)."""
    return connections[router.db_for_read(Entry)]


def report_reading(function):
    """Run ``function`` (a report: reads only) as a big read on the database its reads go to:
    the read replica inside ``members.replica.on_replica()``."""

    @functools.wraps(function)
    def reading(*args, **kwargs):
        with big_read(report_connection()):
            return function(*args, **kwargs)

    return reading
