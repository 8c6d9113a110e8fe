"""The programme's default frequency caps: at most 3 e-mails per 7 days and 1 SMS per day per
member. Administrators change or add rules in the admin (Campaigns → Frequency caps)."""

from django.db import migrations

DEFAULTS = [
    {"channel": "email", "max_messages": 3, "period": 7, "unit": "days"},
    {"channel": "sms", "max_messages": 1, "period": 1, "unit": "days"},
]


def caps_add(apps, schema_editor):
    FrequencyCap = apps.get_model("campaigns", "FrequencyCap")
    for cap in DEFAULTS:
        FrequencyCap.objects.get_or_create(**cap)


def caps_remove(apps, schema_editor):
    FrequencyCap = apps.get_model("campaigns", "FrequencyCap")
    for cap in DEFAULTS:
        FrequencyCap.objects.filter(**cap).delete()


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0006_message_templates_sends_caps")]

    operations = [migrations.RunPython(caps_add, caps_remove)]
