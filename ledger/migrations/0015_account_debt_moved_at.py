"""Accounts remember when their debt last moved (``Account.debt_moved_at``), filled from the
entries: the newest entry that left a balance below zero or paid some of a debt."""

from django.db import migrations, models
from django.db.models import F, OuterRef, Q, Subquery


def fill(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    Entry = apps.get_model("ledger", "Entry")
    moved = Entry.objects.filter(
        Q(balance_after__lt=0) | Q(amount__gt=0, balance_after__lt=F("amount"))
    )
    newest = moved.filter(account=OuterRef("pk")).order_by("-created_at").values("created_at")[:1]
    Account.objects.filter(pk__in=moved.values("account_id")).update(
        debt_moved_at=Subquery(newest)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0014_period_close_and_redemption_estimate"),
    ]

    operations = [
        migrations.AddField(
            model_name="account",
            name="debt_moved_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="debt last moved at"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=True),
    ]
