import os
import uuid

import pytest
import redis
from django.test import override_settings

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

MEMBER = "7c1d1c59-0000-4000-8000-000000000000"
# The suite runs beside a Redis server (`.ci/run` starts one); database 15 is left to tests.
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def test_a_channel_over_its_rate_gets_429_with_retry_after(make_channel, settings):
    settings.LOYALTY_API_RATE = "3/min"
    _busy, busy_key = make_channel("busy")
    _calm, calm_key = make_channel("calm")
    busy = client_for(busy_key)
    for _ in range(3):
        assert busy.get(f"/api/v1/members/{MEMBER}/").status_code == 404
    response = busy.get(f"/api/v1/members/{MEMBER}/")
    assert response.status_code == 429
    assert response.json()["code"] == "throttled"
    assert 0 < int(response["Retry-After"]) <= 60
    # Counted per channel: another channel is not slowed down.
    assert client_for(calm_key).get(f"/api/v1/members/{MEMBER}/").status_code == 404


def test_a_channels_own_rate_overrides_the_default(make_channel, settings):
    settings.LOYALTY_API_RATE = "100/min"
    _channel, key = make_channel("slow", rate="1/hour")
    client = client_for(key)
    assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
    response = client.get(f"/api/v1/members/{MEMBER}/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 60


def _redis_cache(location: str, prefix: str) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


def test_with_redis_the_counters_are_shared_by_every_process(make_channel, settings):
    # Another web process sees what this one counted: the counter lives in Redis, not here.
    # (override_settings, not the settings fixture: the suite's teardown clears the default
    # cache, which must be the local one again by then.)
    prefix = f"test-{uuid.uuid4().hex}"
    settings.LOYALTY_API_RATE = "2/min"
    channel, key = make_channel("shared")
    client = client_for(key)
    other_process = redis.Redis.from_url(REDIS)
    try:
        with override_settings(CACHES=_redis_cache(REDIS, prefix)):
            assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
            stored = other_process.keys(f"{prefix}:*throttle_channel_{channel.pk}")
            assert len(stored) == 1
            assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
            assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 429
    finally:
        for stale in other_process.keys(f"{prefix}:*"):
            other_process.delete(stale)


def test_unreachable_counters_let_requests_through(make_channel, settings, caplog):
    settings.LOYALTY_API_RATE = "1/min"
    _channel, key = make_channel("till")
    client = client_for(key)
    with override_settings(CACHES=_redis_cache("redis://127.0.0.1:1/0", "test")):
        for _ in range(2):
            assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
    assert "rate counters unavailable" in caplog.text
