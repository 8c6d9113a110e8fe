"""Model instances from hand-written SELECTs on the channel API's hot paths.

`Model.objects.raw()` works out, on every query, which columns the cursor returned, in which
order the model takes them and which converters each needs; on the channel API's most frequent
reads (a member by id, the account an earn locks) that cost more CPU than the statement itself.
`Rows` does that work once per model and database: a statement selects `rows.columns(alias)`
first (every concrete field, in the model's order), then whatever else it needs, and
`rows.instance(row)` builds the instance from the first columns with Django's own converters
(`Model.from_db`, as every queryset does), so a JSON, date or UUID column reads the same on
PostgreSQL and SQLite as through the ORM. No signals are involved in reading, so none are skipped.

`rows.insert(objects)` is `QuerySet.bulk_create(objects)` for new instances of the model in one
`INSERT … RETURNING` kept per number of rows: each field's `pre_save` runs (defaults and
`auto_now_add`) and prepares its value as the ORM does, and the instances get their primary
keys and are marked saved. As with `bulk_create`, no signal is sent: it is for the hot paths'
rows that nothing listens to (entries, lots, purchases and their lines, awards).

`rows.update(pk, field=value, …)` is `QuerySet.filter(pk=pk).update(…)` with its statement kept
per set of fields: the values are prepared by their fields as the ORM prepares them, and, as
with `QuerySet.update`, no signal is sent and no `auto_now` is applied.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connections
from django.db.models import Model

_AUTO = {"AutoField", "BigAutoField", "SmallAutoField"}


class Rows:
    def __init__(self, model: type[Model]):
        self.model = model
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [field.attname for field in self.fields]
        self._converters: dict[str, list] = {}
        self._updates: dict[tuple, tuple[str, list]] = {}
        self._inserts: dict[tuple, str] = {}
        self.written = [
            field
            for field in self.fields
            if not (field.primary_key and field.get_internal_type() in _AUTO)
        ]

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    def columns(self, alias: str = "", using: str = "default") -> str:
        """The model's columns, in its order, qualified by `alias` when given."""
        quote = connections[using].ops.quote_name
        prefix = f"{alias}." if alias else ""
        return ", ".join(prefix + quote(field.column) for field in self.fields)

    def _converters_for(self, using: str) -> list:
        found = self._converters.get(using)
        if found is None:
            connection = connections[using]
            found = []
            for n, field in enumerate(self.fields):
                # What SQLCompiler.get_converters gives a column of this field.
                functions = connection.ops.get_db_converters(field.get_col(self.table))
                functions += field.get_db_converters(connection)
                if functions:
                    found.append((n, field, functions))
            self._converters[using] = found
        return found

    def instance(self, row: Sequence, using: str = "default") -> Model:
        """The instance of the model from the first len(fields) values of `row`."""
        values = list(row[: len(self.fields)])
        connection = connections[using]
        for n, field, functions in self._converters_for(using):
            value = values[n]
            for function in functions:
                value = function(value, field, connection)
            values[n] = value
        return self.model.from_db(using, self.attnames, values)

    def update(self, pk, *, using: str = "default", **values) -> int:
        """Set `values` (by field name) on the row `pk`; the number of rows changed (0 or 1)."""
        names = tuple(values)
        kept = self._updates.get((using, names))
        if kept is None:
            quote = connections[using].ops.quote_name
            fields = [self.model._meta.get_field(name) for name in names]
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
            sql = (
                f"UPDATE {quote(self.table)} SET {assignments} "
                f"WHERE {quote(self.model._meta.pk.column)} = %s"
            )
            kept = self._updates[(using, names)] = (sql, fields)
        sql, fields = kept
        connection = connections[using]
        params = [
            field.get_db_prep_save(value, connection)
            for field, value in zip(fields, values.values(), strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, pk])
            return cursor.rowcount

    def insert(self, objects: Sequence[Model], *, using: str = "default") -> None:
        """Insert the new instances `objects` in one statement; each gets its primary key."""
        if not objects:
            return
        connection = connections[using]
        sql = self._inserts.get((using, len(objects)))
        if sql is None:
            quote = connection.ops.quote_name
            columns = ", ".join(quote(field.column) for field in self.written)
            row = "(" + ", ".join(["%s"] * len(self.written)) + ")"
            sql = self._inserts[(using, len(objects))] = (
                f"INSERT INTO {quote(self.table)} ({columns}) VALUES "
                + ", ".join([row] * len(objects))
                + f" RETURNING {quote(self.model._meta.pk.column)}"
            )
        params = [
            field.get_db_prep_save(field.pre_save(obj, True), connection)
            for obj in objects
            for field in self.written
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            keys = cursor.fetchall()
        # PostgreSQL and SQLite return the rows of a multi-row VALUES in their order.
        for obj, (key,) in zip(objects, keys, strict=True):
            obj.pk = key
            obj._state.adding = False
            obj._state.db = using
