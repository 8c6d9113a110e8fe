"""Webhook URLs may not point inside the network (issue 12, item 14): checked at save and send."""

import socket

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from loyalty_site.models import Channel, WebhookSubscription
from loyalty_site.webhook_targets import TargetRefused, target_check, webhook_url_validate

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


@pytest.fixture(autouse=True)
def dns(monkeypatch):
    """A fake resolver: tests name the addresses each host resolves to; nothing leaves the box."""
    names = {}

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in names[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return names


def refusal(url):
    with pytest.raises(TargetRefused) as refused:
        target_check(url)
    return refused.value.code


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:8000/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://10.1.2.3/hook",
        "https://172.16.0.9/hook",
        "https://192.168.1.10/hook",
        "https://100.64.0.1/hook",
        "https://0.0.0.0/hook",
        "https://224.0.0.251/hook",
        "https://240.0.0.1/hook",
        "https://[fd00::1]/hook",
    ],
)
def test_addresses_inside_the_network_are_refused(url):
    assert refusal(url) == "private"


def test_a_name_is_refused_when_any_of_its_addresses_is_inside(dns):
    dns["metadata.google.internal"] = ["169.254.169.254"]
    dns["split.example.com"] = [PUBLIC_V4, "10.0.0.7"]
    dns["hooks.example.com"] = [PUBLIC_V4, PUBLIC_V6]
    assert refusal("https://metadata.google.internal/computeMetadata/v1/") == "private"
    assert refusal("https://split.example.com/hook") == "private"
    target_check("https://hooks.example.com/hook")
    target_check(f"https://{PUBLIC_V4}/hook")


def test_only_https_unless_debug(dns, settings):
    dns["hooks.example.com"] = [PUBLIC_V4]
    assert refusal("ftp://hooks.example.com/hook") == "scheme"
    assert refusal("http://hooks.example.com/hook") == "scheme"
    settings.DEBUG = True
    target_check("http://hooks.example.com/hook")
    assert refusal("ftp://hooks.example.com/hook") == "scheme"


def test_unknown_hosts_and_urls_without_a_host_are_refused():
    assert refusal("https://nowhere.example.com/hook") == "unresolved"
    assert refusal("https:///hook") == "host"
    assert refusal("https://hooks.example.com:port/hook") == "host"


def test_the_test_only_setting_lets_a_local_receiver_through(settings):
    settings.LOYALTY_WEBHOOK_ALLOW_PRIVATE = True
    target_check("http://127.0.0.1:8000/hook")
    assert refusal("ftp://127.0.0.1/hook") == "scheme"


def test_the_validator_explains_the_refusal(dns):
    dns["metadata.google.internal"] = ["169.254.169.254"]
    with pytest.raises(ValidationError) as error:
        webhook_url_validate("https://metadata.google.internal/")
    assert error.value.messages == [
        "The host metadata.google.internal is inside the network (169.254.169.254). "
        "Webhooks are sent only to public addresses."
    ]
    with pytest.raises(ValidationError) as error:
        webhook_url_validate("http://[::1]/")
    assert error.value.messages == ["Webhook URLs must start with https://."]


@pytest.mark.django_db
def test_the_admin_refuses_an_internal_url_and_saves_a_public_one(dns, client, staff_user):
    dns["hooks.example.com"] = [PUBLIC_V4]
    channel = Channel.objects.create(name="crm", kind=Channel.Kind.PARTNER)
    client.force_login(staff_user("Administrator", is_superuser=True))
    form = {
        "channel": channel.pk,
        "secret": "s3cret",
        "event_types": '["points.earned"]',
        "active": "on",
    }
    response = client.post(
        "/admin/loyalty_site/webhooksubscription/add/",
        {**form, "url": "https://169.254.169.254/latest/meta-data/"},
    )
    assert response.status_code == 200
    assert "is inside the network (169.254.169.254)" in response.content.decode()
    assert not WebhookSubscription.objects.exists()
    response = client.post(
        "/admin/loyalty_site/webhooksubscription/add/",
        {**form, "url": "https://hooks.example.com/hook"},
    )
    assert response.status_code == 302
    subscription = WebhookSubscription.objects.get()
    assert subscription.url == "https://hooks.example.com/hook"
    page = client.get(f"/admin/loyalty_site/webhooksubscription/{subscription.pk}/change/")
    # The receiver's key for a Standard Webhooks library: whsec_ + base64("s3cret").
    assert "whsec_czNjcmV0" in page.content.decode()


def test_deploy_check_warns_about_the_test_only_setting(settings):
    settings.LOYALTY_WEBHOOK_ALLOW_PRIVATE = True
    with pytest.raises(SystemCheckError, match="loyalty_site.W001"):
        call_command("check", "--deploy", "--fail-level", "WARNING", "--tag", "security")
