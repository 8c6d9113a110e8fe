"""Indexes for the segment counts (issue 16): a member's purchases by time with their status and
id (replaces purchase_member_recent), the purchases by time with their member and status
(replaces purchase_occurred), and the lines by category and purchase. Each answers its part of a
segment from the index alone (see ledger.models.purchases).

On PostgreSQL they are built with CREATE INDEX CONCURRENTLY, so the tills' inserts are not
locked out while a large table is indexed (minutes at a million members), hence outside a
transaction; each replaced index is dropped (concurrently) only once its successor exists.
"""

from django.db import migrations, models


def _concurrently(schema_editor) -> dict:
    return {"concurrently": True} if schema_editor.connection.vendor == "postgresql" else {}


PURCHASE_MEMBER_WINDOW = models.Index(
    fields=["member", "-occurred_at"], include=["status", "id"], name="purchase_member_window"
)
PURCHASE_OCCURRED_MEMBER = models.Index(
    fields=["occurred_at"], include=["member", "status"], name="purchase_occurred_member"
)
PURCHASELINE_CATEGORY = models.Index(
    fields=["category", "purchase"], name="purchaseline_category"
)
PURCHASE_MEMBER_RECENT = models.Index(
    fields=["member", "-occurred_at"], name="purchase_member_recent"
)
PURCHASE_OCCURRED = models.Index(fields=["occurred_at"], name="purchase_occurred")


def forwards(apps, schema_editor):
    purchase = apps.get_model("ledger", "Purchase")
    line = apps.get_model("ledger", "PurchaseLine")
    how = _concurrently(schema_editor)
    schema_editor.add_index(purchase, PURCHASE_MEMBER_WINDOW, **how)
    schema_editor.add_index(purchase, PURCHASE_OCCURRED_MEMBER, **how)
    schema_editor.add_index(line, PURCHASELINE_CATEGORY, **how)
    schema_editor.remove_index(purchase, PURCHASE_MEMBER_RECENT, **how)
    schema_editor.remove_index(purchase, PURCHASE_OCCURRED, **how)


def backwards(apps, schema_editor):
    purchase = apps.get_model("ledger", "Purchase")
    line = apps.get_model("ledger", "PurchaseLine")
    how = _concurrently(schema_editor)
    schema_editor.add_index(purchase, PURCHASE_MEMBER_RECENT, **how)
    schema_editor.add_index(purchase, PURCHASE_OCCURRED, **how)
    schema_editor.remove_index(line, PURCHASELINE_CATEGORY, **how)
    schema_editor.remove_index(purchase, PURCHASE_OCCURRED_MEMBER, **how)
    schema_editor.remove_index(purchase, PURCHASE_MEMBER_WINDOW, **how)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("ledger", "0020_purchase_occurred_index"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forwards, backwards)],
            state_operations=[
                migrations.AddIndex(model_name="purchase", index=PURCHASE_MEMBER_WINDOW),
                migrations.AddIndex(model_name="purchase", index=PURCHASE_OCCURRED_MEMBER),
                migrations.AddIndex(model_name="purchaseline", index=PURCHASELINE_CATEGORY),
                migrations.RemoveIndex(model_name="purchase", name="purchase_member_recent"),
                migrations.RemoveIndex(model_name="purchase", name="purchase_occurred"),
            ],
        ),
    ]
