import pytest

from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

MEMBER = "7c1d1c59-0000-4000-8000-000000000000"


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
