"""The control-group hash works modulo 2**31 - 1 (campaigns.control): salts must be below it.

A stored salt at or above the new prime is folded into range (salt mod (2**31 - 2) + 1), which
keeps it fixed per campaign. The new hash splits every campaign's audience differently from the
linear one it replaces, so results of a campaign that ran before this migration compare its
control group as the new hash draws it.
"""

from django.db import migrations, models
from django.db.models import F, Value

PRIME = 2**31 - 1


def fold_salts(apps, schema_editor):
    Campaign = apps.get_model("campaigns", "Campaign")
    Campaign.objects.filter(salt__gte=PRIME).update(salt=F("salt") % Value(PRIME - 1) + 1)


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0011_merge_offers"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="campaign",
            name="campaign_salt_in_range",
        ),
        migrations.RunPython(fold_salts, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="campaign",
            constraint=models.CheckConstraint(
                condition=models.Q(("salt__gte", 1), ("salt__lt", 2147483647)),
                name="campaign_salt_in_range",
                violation_error_message="The campaign's salt is out of range.",
            ),
        ),
    ]
