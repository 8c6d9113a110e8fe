import io
import os
import uuid
from datetime import UTC, datetime

import pytest
import redis
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.test import override_settings

from loyalty_site.models import Channel
from loyalty_site.rates import rate_parse
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

MEMBER = "7c1d1c59-0000-4000-8000-000000000000"
# The suite runs beside a Redis server (`.ci/run` starts one); database 15 is left to tests.
REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
# Five seconds into a minute (and an hour): the windows are fixed, so the tests pin the clock.
AT = datetime(2026, 11, 27, 10, 0, 5, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _clock(time_machine):
    time_machine.move_to(AT, tick=False)
    return time_machine


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
    assert response["Retry-After"] == "55"  # when the next minute starts
    # Counted per channel: another channel is not slowed down.
    assert client_for(calm_key).get(f"/api/v1/members/{MEMBER}/").status_code == 404


def test_the_next_window_starts_a_new_count(make_channel, settings, _clock):
    settings.LOYALTY_API_RATE = "2/min"
    _channel, key = make_channel("till")
    client = client_for(key)
    assert [client.get(f"/api/v1/members/{MEMBER}/").status_code for _ in range(3)] == [
        404,
        404,
        429,
    ]
    _clock.move_to(datetime(2026, 11, 27, 10, 1, 0, tzinfo=UTC), tick=False)
    assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404


def test_a_channels_own_rate_overrides_the_default(make_channel, settings):
    settings.LOYALTY_API_RATE = "100/min"
    _channel, key = make_channel("slow", rate="1/hour")
    client = client_for(key)
    assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
    response = client.get(f"/api/v1/members/{MEMBER}/")
    assert response.status_code == 429
    assert response["Retry-After"] == "3595"


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
            stored = other_process.keys(f"{prefix}:*throttle_channel_{channel.pk}_*")
            assert len(stored) == 1
            # One small counter per window, however many requests it counts.
            assert other_process.get(stored[0]) == b"1"
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


@pytest.mark.parametrize(
    ("rate", "parsed"),
    [("600/min", (600, 60)), ("5/s", (5, 1)), (" 2 / Hour ", (2, 3600)), ("1/days", (1, 86400))],
)
def test_rates_are_read_with_their_period(rate, parsed):
    assert rate_parse(rate) == parsed


@pytest.mark.parametrize("rate", ["fast", "600", "0/min", "-1/min", "10/week", "10/mango"])
def test_a_bad_rate_is_refused_where_it_is_given(rate):
    with pytest.raises(ValueError):
        rate_parse(rate)
    with pytest.raises(CommandError, match="requests per s, min, hour or day"):
        call_command("create_channel", "Webshop", f"--rate={rate}", stdout=io.StringIO())
    assert not Channel.objects.exists()
    with pytest.raises(ValidationError):
        Channel(name="Webshop", scopes=[], rate=rate).full_clean()


def test_a_channel_with_an_unreadable_stored_rate_gets_the_default(make_channel, settings):
    settings.LOYALTY_API_RATE = "2/min"
    channel, key = make_channel("till")
    Channel.objects.filter(pk=channel.pk).update(rate="lots")
    client = client_for(key)
    statuses = [client.get(f"/api/v1/members/{MEMBER}/").status_code for _ in range(3)]
    assert statuses == [404, 404, 429]


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_never_pass_more_than_the_rate(make_channel, settings):
    # Eight web processes' worth of threads, each on its own connections, share one counter.
    from tests.ledger.concurrency import run_together

    prefix = f"test-{uuid.uuid4().hex}"
    settings.LOYALTY_API_RATE = "20/min"
    _channel, key = make_channel("busy")
    other_process = redis.Redis.from_url(REDIS)

    def burst():
        client = client_for(key)
        return [client.get(f"/api/v1/members/{MEMBER}/").status_code for _ in range(5)]

    try:
        with override_settings(CACHES=_redis_cache(REDIS, prefix)):
            results = run_together(*([burst] * 8))
    finally:
        for stale in other_process.keys(f"{prefix}:*"):
            other_process.delete(stale)
    statuses = [status for result in results for status in result]
    assert statuses.count(404) == 20 and statuses.count(429) == 20
