"""The admin's status filter: an index of the members that are not active.

Built without locking the table's writes (``members.concurrent_index``), so outside a
transaction.
"""

from django.db import migrations, models

from members.concurrent_index import AddIndexWithoutLock


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("members", "0011_member_enrolled_index"),
    ]

    operations = [
        AddIndexWithoutLock(
            model_name="member",
            index=models.Index(
                condition=models.Q(("status", "active"), _negated=True),
                fields=["status", "-id"],
                name="member_status_rare",
            ),
        ),
    ]
