"""Deliveries used to keep the first 500 characters of a failed answer (or of the exception) in
last_error, where staff read them; replace them with the short notes deliveries keep now."""

from django.db import migrations
from django.db.models import CharField, Q, Value
from django.db.models.functions import Cast, Concat


def forget_answer_bodies(apps, schema_editor):
    deliveries = apps.get_model("loyalty_site", "WebhookDelivery").objects.exclude(last_error="")
    deliveries.filter(response_status__isnull=False).update(
        last_error=Concat(Value("HTTP "), Cast("response_status", CharField()))
    )
    deliveries.filter(response_status__isnull=True).update(last_error="request failed")


class Migration(migrations.Migration):
    dependencies = [("loyalty_site", "0004_webhooksubscription_url_public")]

    operations = [migrations.RunPython(forget_answer_bodies, migrations.RunPython.noop)]
