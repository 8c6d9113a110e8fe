"""The webhook outbox's deduplication: one delivery per subscription and key."""

import pytest
from django.db import IntegrityError, transaction

from loyalty_site import webhooks
from loyalty_site.models import Channel, WebhookDelivery, WebhookSubscription

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_cache(settings, monkeypatch):
    settings.LOYALTY_WEBHOOK_CACHE_SECONDS = 0
    webhooks.subscriptions_cache_clear()
    monkeypatch.setattr(webhooks, "_schedule", lambda ids: None)
    yield
    webhooks.subscriptions_cache_clear()


@pytest.fixture
def subscriptions():
    made = []
    for name in ("app", "partner"):
        channel = Channel.objects.create(name=name, kind=Channel.Kind.APP)
        made.append(
            WebhookSubscription.objects.create(
                channel=channel,
                url=f"https://{name}.example.com/hook",
                secret="s3cret",
                event_types=["points.earned"],
                all_channels=True,
            )
        )
    return made


def _emit(**kwargs):
    return webhooks.event_emit(event_type="points.earned", data={"points": 5}, **kwargs)


def test_the_same_key_twice_makes_no_second_delivery(subscriptions):
    first = _emit(dedupe_key="earn:1")
    assert len(first) == 2
    assert _emit(dedupe_key="earn:1") == []
    assert sorted(WebhookDelivery.objects.values_list("pk", flat=True)) == sorted(first)
    assert len(_emit(dedupe_key="earn:2")) == 2


def test_without_a_key_every_emit_is_delivered_as_before(subscriptions):
    assert len(_emit()) == 2
    assert len(_emit()) == 2
    assert WebhookDelivery.objects.filter(dedupe_key="").count() == 4


def test_the_database_refuses_a_second_delivery_with_the_same_key(subscriptions):
    [delivery_id, _other] = _emit(dedupe_key="earn:1")
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        WebhookDelivery.objects.create(
            subscription=delivery.subscription,
            event_type=delivery.event_type,
            dedupe_key="earn:1",
            payload={},
        )


def test_a_replay_of_a_deduplicated_delivery_is_sent_again(subscriptions):
    [delivery_id, _other] = _emit(dedupe_key="earn:1")
    copy = webhooks.delivery_replay(delivery=WebhookDelivery.objects.get(pk=delivery_id))
    assert copy.pk != delivery_id and copy.dedupe_key == ""
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert copy.event_id == delivery.event_id
    same = WebhookDelivery.objects.filter(subscription=delivery.subscription)
    assert same.count() == 2
