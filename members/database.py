"""How the app's big reads ask PostgreSQL to plan them: the reports, the finance exports'
chunks and the segment counts, which read much of the database with the same statement text
again and again.

``big_read(connection)`` runs a block in a transaction of its own whose statements PostgreSQL
plans

- without its JIT: a big read's row estimates are high enough to cross ``jit_above_cost``, and
  compiling costs more than it saves (80 of the 100 ms of the finance page's debt query on the
  demo data; 70 ms of the typical segment's count and 270 ms of an RFM ranking's at 100,000
  members with the thresholds scaled to a tenth);
- for each execution's own values (``plan_cache_mode = force_custom_plan``): psycopg prepares a
  statement once it has run 5 times on its connection (settings: ``prepare_threshold``), and
  after 5 more executions PostgreSQL may keep one generic plan, made without the values, when
  its estimate looks no worse. Without the dates a window's rows are guessed, and at a million
  members the typical segment's count (tier + recency + category) went from 420 ms for its
  first ten runs on a connection to 4.8-6.6 s from the eleventh on (bench/segments_bench.py;
  with this setting, 420 ms every time). The earn's short statements keep their generic plans:
  set for the whole connection, re-planning every execution cost each earn 0.5 ms of the
  database's CPU (1.08 -> 1.58 ms, bench/api_profile.py).

Both settings are ``SET LOCAL`` (one ``set_config`` statement): they end with the transaction
and reach nothing else the connection runs, behind a transaction pooler too. Called inside
another transaction, they last until that one ends. SQLite runs the block as it is.
"""

from contextlib import contextmanager

from django.db import transaction

BIG_READ_SETTINGS = (
    "SELECT set_config('jit', 'off', true), "
    "set_config('plan_cache_mode', 'force_custom_plan', true)"
)


@contextmanager
def big_read(connection):
    if connection.vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=connection.alias):
        with connection.cursor() as cursor:
            cursor.execute(BIG_READ_SETTINGS)
        yield
