"""Indexes for the segment counts (issue 16): a member's purchases by time with their status and
id (replaces purchase_member_recent), the purchases by time with their member and status
(replaces purchase_occurred), and the lines by category and purchase. Each answers its part of a
segment from the index alone (see ledger.models.purchases).

Built and dropped without locking the tables' writes (``members.concurrent_index``): purchases
and their lines are what every till inserts into. Hence outside a transaction. Each replaced
index is dropped only once its successor is built.
"""

from django.db import migrations, models

from members.concurrent_index import AddIndexWithoutLock, RemoveIndexWithoutLock


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ledger", "0021_filter_indexes"),
    ]

    operations = [
        AddIndexWithoutLock(
            model_name="purchase",
            index=models.Index(
                fields=["member", "-occurred_at"],
                include=["status", "id"],
                name="purchase_member_window",
            ),
        ),
        AddIndexWithoutLock(
            model_name="purchase",
            index=models.Index(
                fields=["occurred_at"],
                include=["member", "status"],
                name="purchase_occurred_member",
            ),
        ),
        AddIndexWithoutLock(
            model_name="purchaseline",
            index=models.Index(fields=["category", "purchase"], name="purchaseline_category"),
        ),
        RemoveIndexWithoutLock(model_name="purchase", name="purchase_member_recent"),
        RemoveIndexWithoutLock(model_name="purchase", name="purchase_occurred"),
    ]
