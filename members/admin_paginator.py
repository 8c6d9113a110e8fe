"""A paginator for admin changelists over tables of millions of rows: no ``COUNT(*)`` of them.

Django's admin asks its paginator for ``count`` on every page view; on 30 M ledger entries an
exact count reads the whole table (or its largest index) each time. This paginator answers

- for the unfiltered list on PostgreSQL, the planner's estimate of the table's size
  (``pg_class.reltuples``, kept by autovacuum's ANALYZE): one catalogue row, however big the
  table;
- otherwise (a filter or a search, SQLite, or a table never analysed or small), the exact count
  of at most ``COUNTED_AT_MOST`` rows: ``SELECT COUNT(*) FROM (SELECT … LIMIT n)``, which stops
  reading once it has n.

So the list shows "about N" pages of a big table and at most n/list_per_page pages of a big
filtered result: the newest rows are what staff look for; narrowing the filter finds the rest.
Use it with ``show_full_result_count = False`` (else the admin counts the table itself). Lives in
members, the lowest app, so every app's admin can use it.
"""

from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

COUNTED_AT_MOST = 10_000


def table_size_estimate(model, *, using: str = "default") -> int | None:
    """The planner's estimate of the rows in ``model``'s table; None when there is none (SQLite,
    or PostgreSQL has not analysed the table yet: reltuples is -1 then)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:
        return None
    return row[0]


class EstimatedCountPaginator(Paginator):
    counted_at_most = COUNTED_AT_MOST

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if not queryset.query.where:
            estimate = table_size_estimate(queryset.model, using=queryset.db)
            # A small table is counted exactly: its count is cheap and the estimate may lag.
            if estimate is not None and estimate > self.counted_at_most:
                return estimate
        return queryset[: self.counted_at_most].count()
