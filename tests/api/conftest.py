import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from loyalty_site import webhooks
from loyalty_site.models import SCOPES, Channel, ChannelAPIKey
from tests.api.factories import member_with


@pytest.fixture(autouse=True)
def _api_settings(settings):
    settings.LOYALTY_WEBHOOK_CACHE_SECONDS = 0
    settings.LOYALTY_API_RATE = "100000/min"
    cache.clear()
    webhooks.subscriptions_cache_clear()
    yield
    cache.clear()
    webhooks.subscriptions_cache_clear()


@pytest.fixture
def make_channel(db):
    """make_channel(name, kind=..., scopes=[...], stores=[...]) -> (channel, key)."""

    def make(name="till", *, kind=Channel.Kind.POS, scopes=None, stores=(), rate=""):
        channel = Channel.objects.create(
            name=name,
            kind=kind,
            scopes=list(SCOPES) if scopes is None else list(scopes),
            stores=list(stores),
            rate=rate,
        )
        _api_key, key = ChannelAPIKey.objects.create_key(name=name, channel=channel)
        return channel, key

    return make


def client_for(key: str | None) -> APIClient:
    client = APIClient()
    if key:
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    return client


@pytest.fixture
def channel(make_channel):
    return make_channel("till")


@pytest.fixture
def api(channel):
    """An API client with a fully scoped POS key."""
    return client_for(channel[1])


@pytest.fixture
def member(db):
    return member_with(points=500)
