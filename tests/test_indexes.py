"""Every index earns its keep: none is a leading part of another index on the same table.

An index that another one starts with serves no lookup the longer one cannot, and costs every
insert on the table a second index write (the ledger, purchases and awards take one per earn).
"""

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db

APPS = ("members", "ledger", "rewards", "campaigns", "loyalty_site")


def _indexes(table: str) -> list[dict]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.relname, i.indisunique, i.indpred IS NOT NULL,
                   ARRAY(SELECT a.attname || ' ' || o.opcname
                         FROM unnest(i.indkey, i.indclass) WITH ORDINALITY AS k(attnum, cls, n)
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                         JOIN pg_opclass o ON o.oid = k.cls
                         ORDER BY k.n)
            FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = %s::regclass AND i.indexprs IS NULL
            """,
            [table],
        )
        return [
            {"name": name, "unique": unique, "partial": partial, "columns": list(columns)}
            for name, unique, partial, columns in cursor.fetchall()
        ]


def test_no_index_is_the_leading_part_of_another():
    # Columns are compared with their operator class: a `_like` index (varchar_pattern_ops,
    # for prefix searches) serves what the plain one beside it cannot.
    redundant = []
    for config in APPS:
        for model in apps.get_app_config(config).get_models():
            if model._meta.proxy:
                continue
            indexes = _indexes(model._meta.db_table)
            for short in indexes:
                if short["unique"] or short["partial"]:
                    continue  # a constraint, or narrower than any full index
                for long in indexes:
                    if long is short or long["partial"]:
                        continue
                    if long["columns"][: len(short["columns"])] == short["columns"]:
                        redundant.append(f"{short['name']} (covered by {long['name']})")
                        break
    assert not redundant, "redundant indexes: " + ", ".join(redundant)
