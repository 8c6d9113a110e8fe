"""The admin's reason-code and purchase-status filters: partial indexes of the rare values.

Built without locking the tables' writes (``members.concurrent_index``): the entries and
purchases are the tables every till inserts into. Hence outside a transaction.
"""

from django.db import migrations, models

from members.concurrent_index import AddIndexWithoutLock


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ledger", "0020_purchase_occurred_index"),
    ]

    operations = [
        AddIndexWithoutLock(
            model_name="entry",
            index=models.Index(
                condition=models.Q(
                    models.Q(("reason_code", ""), _negated=True),
                    models.Q(("reason_code", "purchase"), _negated=True),
                    models.Q(("reason_code", "engagement"), _negated=True),
                ),
                fields=["reason_code", "-created_at", "-id"],
                name="entry_reason_recent",
            ),
        ),
        AddIndexWithoutLock(
            model_name="purchase",
            index=models.Index(
                condition=models.Q(("status", "recorded"), _negated=True),
                fields=["status", "-id"],
                name="purchase_status_rare",
            ),
        ),
    ]
