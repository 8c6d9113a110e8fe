import io

import pytest
from django.core.management import CommandError, call_command

from loyalty_site.models import SCOPES, Channel, ChannelAPIKey
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db

MEMBER = "7c1d1c59-0000-4000-8000-000000000000"
# (method, path, scope it needs)
ENDPOINTS = [
    ("post", "/api/v1/members/", "members:write"),
    ("get", f"/api/v1/members/{MEMBER}/", "members:read"),
    ("get", f"/api/v1/members/{MEMBER}/ledger/", "members:read"),
    ("get", f"/api/v1/members/{MEMBER}/rewards/", "members:read"),
    ("get", "/api/v1/cards/6280001234567890/", "members:read"),
    ("post", "/api/v1/purchases/", "purchases:write"),
    ("post", "/api/v1/purchases/1/returns/", "purchases:write"),
    ("post", "/api/v1/events/", "events:write"),
    ("post", "/api/v1/redemptions/", "redemptions:write"),
    ("post", "/api/v1/redemptions/1/confirm/", "redemptions:write"),
    ("post", "/api/v1/redemptions/1/cancel/", "redemptions:write"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_no_key_is_401(method, path, scope):
    response = getattr(client_for(None), method)(path, {}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Api-Key"


@pytest.mark.parametrize(
    "header", ["Api-Key nope", "Api-Key abc.def", "Bearer x", "Api-Key ", "Basic Zm9vOmJhcg=="]
)
def test_wrong_key_is_401(channel, header):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(f"/api/v1/members/{MEMBER}/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_key_without_the_scope_is_403(make_channel, method, path, scope):
    _channel, key = make_channel("narrow", scopes=sorted(set(SCOPES) - {scope}))
    response = getattr(client_for(key), method)(path, {}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_revoked_key_and_inactive_channel_are_401(channel):
    channel_obj, key = channel
    client = client_for(key)
    assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
    Channel.objects.filter(pk=channel_obj.pk).update(active=False)
    response = client.get(f"/api/v1/members/{MEMBER}/")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")
    Channel.objects.filter(pk=channel_obj.pk).update(active=True)
    ChannelAPIKey.objects.filter(channel=channel_obj).update(revoked=True)
    response = client.get(f"/api/v1/members/{MEMBER}/")
    assert (response.status_code, response.json()["code"]) == (401, "not_authenticated")


def test_create_channel_prints_a_working_key_last():
    out = io.StringIO()
    call_command(
        "create_channel", "webshop", "--kind", "webshop", "--scopes", "members:read", stdout=out
    )
    key = out.getvalue().strip().splitlines()[-1]
    channel = Channel.objects.get(name="webshop")
    assert channel.kind == "webshop" and channel.scopes == ["members:read"]
    api_key = ChannelAPIKey.objects.get(channel=channel)
    assert key not in api_key.hashed_key  # stored hashed
    assert client_for(key).get(f"/api/v1/members/{MEMBER}/").status_code == 404
    assert client_for(key).post("/api/v1/members/", {}, format="json").status_code == 403


def test_create_channel_refuses_unknown_scopes_and_existing_names():
    with pytest.raises(CommandError, match="Unknown scopes: everything"):
        call_command("create_channel", "x", "--scopes", "everything", stdout=io.StringIO())
    call_command("create_channel", "pos", stdout=io.StringIO())
    with pytest.raises(CommandError, match="exists; use --new-key"):
        call_command("create_channel", "pos", stdout=io.StringIO())
    assert list(Channel.objects.values_list("name", flat=True)) == ["pos"]


def test_create_channel_new_key_revokes_the_old_one():
    out = io.StringIO()
    call_command("create_channel", "pos", stdout=out)
    old = out.getvalue().strip().splitlines()[-1]
    out = io.StringIO()
    call_command("create_channel", "pos", "--new-key", stdout=out)
    new = out.getvalue().strip().splitlines()[-1]
    assert client_for(old).get(f"/api/v1/members/{MEMBER}/").status_code == 401
    assert client_for(new).get(f"/api/v1/members/{MEMBER}/").status_code == 404


def test_admin_revokes_a_channels_keys(channel, staff_user, client):
    from django.contrib.auth.models import Permission

    channel_obj, key = channel
    admin_user = staff_user("Administrator", is_superuser=True)
    client.force_login(admin_user)
    response = client.post(
        "/admin/loyalty_site/channel/",
        {"action": "revoke_keys", "_selected_action": [channel_obj.pk]},
    )
    assert response.status_code == 302
    assert client_for(key).get(f"/api/v1/members/{MEMBER}/").status_code == 401
    assert Permission.objects.filter(codename="view_webhookdelivery").exists()


def test_a_revoked_key_works_until_the_config_cache_expires(channel, settings, monkeypatch):
    # The delay the README states: a revocation reaches every web process within
    # LOYALTY_CONFIG_CACHE_SECONDS.
    from members import config_cache

    settings.LOYALTY_CONFIG_CACHE_SECONDS = 5
    clock = [1000.0]
    monkeypatch.setattr(config_cache.time, "monotonic", lambda: clock[0])
    channel_obj, key = channel
    client = client_for(key)
    assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
    ChannelAPIKey.objects.filter(channel=channel_obj).update(revoked=True)
    clock[0] += 4
    assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 404
    clock[0] += 2
    assert client.get(f"/api/v1/members/{MEMBER}/").status_code == 401
