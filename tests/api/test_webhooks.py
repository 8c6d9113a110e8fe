import hashlib
import hmac
import json
import socket
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from standardwebhooks import Webhook

from loyalty_site import webhooks
from loyalty_site.models import WebhookDelivery, WebhookSubscription
from tests.api.conftest import client_for
from tests.campaigns.factories import EarningRuleFactory

pytestmark = pytest.mark.django_db

SECRET = "s3cret-for-tests"


@pytest.fixture(autouse=True)
def _local_receiver(settings):
    # The receivers below listen on http://127.0.0.1, which production refuses
    # (tests/test_webhook_targets.py); the test-only setting lets them through.
    settings.LOYALTY_WEBHOOK_ALLOW_PRIVATE = True


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers with the statuses it is given, in turn."""

    def __init__(self, statuses=(200,), headers=None):
        self.statuses = list(statuses)
        self.headers = dict(headers or {})
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                status = (
                    receiver.statuses.pop(0) if len(receiver.statuses) > 1 else receiver.statuses[0]
                )
                self.send_response(status)
                for name, value in receiver.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=(200,), headers=None):
        r = Receiver(statuses, headers)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def subscribe(channel, url, types, **kwargs):
    return WebhookSubscription.objects.create(
        channel=channel, url=url, secret=SECRET, event_types=list(types), **kwargs
    )


@pytest.mark.django_db(transaction=True)
def test_purchase_sends_a_signed_points_earned_event(make_channel, receiver):
    from tests.api.factories import member_with

    EarningRuleFactory(rate=Decimal(1))
    channel, key = make_channel("webshop")
    hook = receiver()
    subscribe(channel, hook.url, ["points.earned"])
    member = member_with(points=0)
    response = client_for(key).post(
        "/api/v1/purchases/",
        {"member": str(member.public_id), "external_id": "W1", "amount": "12.00"},
        format="json",
    )
    assert response.status_code == 201
    assert len(hook.requests) == 1
    headers, body = hook.requests[0]
    payload = json.loads(body)
    assert payload["type"] == "points.earned"
    assert payload["data"]["points"] == 12 and payload["data"]["member"] == str(member.public_id)
    expected = hmac.new(
        SECRET.encode(), headers["X-Loyalty-Timestamp"].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    assert headers["X-Loyalty-Signature"] == f"sha256={expected}"
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "delivered" and delivery.response_status == 200
    assert delivery.attempts == 1


@pytest.mark.django_db(transaction=True)
def test_a_purchase_that_lifts_the_tier_sends_tier_changed(make_channel, receiver, settings):
    from tests.api.factories import member_with
    from tests.members.factories import ladder

    settings.LOYALTY_CONFIG_CACHE_SECONDS = 0
    ladder()
    EarningRuleFactory(rate=Decimal(1))
    channel, key = make_channel("webshop")
    hook = receiver()
    subscribe(channel, hook.url, ["tier.changed"])
    member = member_with(points=0)
    client = client_for(key)
    body = {"member": str(member.public_id), "amount": "100.00"}
    # Enrolled in Bronze, the entry tier: still Bronze after two purchases, nothing to announce.
    client.post("/api/v1/purchases/", {**body, "external_id": "T1"}, format="json")
    client.post("/api/v1/purchases/", {**body, "external_id": "T2"}, format="json")
    assert hook.requests == []
    client.post(
        "/api/v1/purchases/", {**body, "amount": "400.00", "external_id": "T3"}, format="json"
    )
    assert len(hook.requests) == 1
    payload = json.loads(hook.requests[-1][1])
    assert payload["type"] == "tier.changed"
    assert payload["data"]["from"] == "Bronze" and payload["data"]["to"] == "Silver"
    assert payload["data"]["member"] == str(member.public_id)


@pytest.mark.django_db(transaction=True)
def test_enrol_and_redemption_events(make_channel, receiver):
    channel, key = make_channel("app")
    hook = receiver()
    subscribe(channel, hook.url, ["member.enrolled", "redemption.confirmed"])
    client = client_for(key)
    member_id = client.post("/api/v1/members/", {"email": "w@example.nl"}, format="json").json()[
        "id"
    ]
    from ledger import services as ledger_services
    from members.models import Member

    ledger_services.points_earn(member=Member.objects.get(public_id=member_id), points=50)
    reserved = client.post(
        "/api/v1/redemptions/", {"member": member_id, "points": 20, "reserve": True}, format="json"
    ).json()
    assert [json.loads(b)["type"] for _h, b in hook.requests] == ["member.enrolled"]
    client.post(f"/api/v1/redemptions/{reserved['id']}/confirm/")
    types = [json.loads(b)["type"] for _h, b in hook.requests]
    assert types == ["member.enrolled", "redemption.confirmed"]


@pytest.mark.django_db(transaction=True)
def test_a_refused_write_sends_nothing(make_channel, receiver):
    from tests.api.factories import member_with

    channel, key = make_channel("pos")
    hook = receiver()
    subscribe(channel, hook.url, ["redemption.confirmed"])
    member = member_with(points=5)
    response = client_for(key).post(
        "/api/v1/redemptions/", {"member": str(member.public_id), "points": 50}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_points"
    assert hook.requests == [] and not WebhookDelivery.objects.exists()


def test_only_own_channel_events_unless_all_channels(make_channel):
    own, _ = make_channel("own")
    other, _ = make_channel("other")
    mine = subscribe(own, "http://127.0.0.1:9/x", ["points.earned"])
    everything = subscribe(other, "http://127.0.0.1:9/y", ["points.earned"], all_channels=True)
    subscribe(other, "http://127.0.0.1:9/z", ["tier.changed"], all_channels=True)
    ids = webhooks.event_emit(event_type="points.earned", data={"points": 1}, channel="own")
    assert set(
        WebhookDelivery.objects.filter(pk__in=ids).values_list("subscription", flat=True)
    ) == {mine.pk, everything.pk}
    with pytest.raises(ValueError):
        webhooks.event_emit(event_type="nonsense", data={})


def test_failures_are_retried_with_backoff_then_marked_failed(make_channel, receiver, settings):
    settings.LOYALTY_WEBHOOK_MAX_ATTEMPTS = 3
    channel, _ = make_channel("pos")
    hook = receiver(statuses=(500, 503, 500, 200))
    subscribe(channel, hook.url, ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")
    waits = []
    for _ in range(5):
        wait = webhooks.delivery_send(delivery_id=delivery_id)
        if wait is None:
            break
        waits.append(wait)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.status == "failed" and delivery.attempts == 3
    assert delivery.response_status == 500
    assert waits == [30, 60]
    assert len(hook.requests) == 3
    assert webhooks.retry_delay(20) == 1200  # LOYALTY_WEBHOOK_RETRY_MAX_SECONDS


def test_a_retry_succeeds_after_a_failure(make_channel, receiver):
    channel, _ = make_channel("pos")
    hook = receiver(statuses=(502, 200))
    subscribe(channel, hook.url, ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")
    assert webhooks.delivery_send(delivery_id=delivery_id) == 30
    assert webhooks.delivery_send(delivery_id=delivery_id) is None
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    # A delivered row is not sent again (a duplicated task message is harmless).
    assert webhooks.delivery_send(delivery_id=delivery_id) is None
    assert len(hook.requests) == 2


def test_unreachable_receiver_is_logged(make_channel):
    channel, _ = make_channel("pos")
    subscribe(channel, "http://127.0.0.1:9/closed", ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")
    assert webhooks.delivery_send(delivery_id=delivery_id) == 30
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert delivery.status == "pending" and delivery.last_error == "connection failed"
    assert delivery.response_status is None


def test_admin_replays_a_delivery(
    make_channel, receiver, staff_user, client, django_capture_on_commit_callbacks
):
    channel, _ = make_channel("pos")
    hook = receiver()
    subscribe(channel, hook.url, ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={"n": 1}, channel="pos")
    WebhookDelivery.objects.filter(pk=delivery_id).update(status="failed", attempts=8)
    client.force_login(staff_user("Administrator", is_superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/loyalty_site/webhookdelivery/",
            {"action": "replay", "_selected_action": [delivery_id]},
        )
    assert response.status_code == 302
    copy = WebhookDelivery.objects.exclude(pk=delivery_id).get()
    assert copy.event_id == WebhookDelivery.objects.get(pk=delivery_id).event_id
    # Celery runs eagerly in tests: the copy was sent at the admin transaction's commit.
    copy.refresh_from_db()
    assert copy.status == "delivered"
    assert len(hook.requests) == 1
    assert client.get("/admin/loyalty_site/webhookdelivery/").status_code == 200
    assert client.get("/admin/loyalty_site/channel/").status_code == 200
    assert client.get("/admin/loyalty_site/webhooksubscription/").status_code == 200
    assert client.get("/admin/loyalty_site/channelapikey/").status_code == 200


def test_points_expiring_soon_is_announced_once(make_channel, settings):
    from datetime import timedelta

    from django.utils import timezone

    from ledger import services as ledger_services
    from loyalty_site.tasks import points_expiring_soon_notify
    from tests.api.factories import member_with

    settings.LOYALTY_WEBHOOK_EXPIRING_DAYS = 30
    channel, _ = make_channel("app")
    subscribe(channel, "http://127.0.0.1:9/x", ["points.expiring_soon"], all_channels=True)
    entering = member_with()
    inside = member_with()
    now = timezone.now()
    ledger_services.points_earn(
        member=entering, points=40, expires_at=now + timedelta(days=29, hours=12)
    )
    ledger_services.points_earn(member=inside, points=10, expires_at=now + timedelta(days=3))
    assert points_expiring_soon_notify() == 1  # one chunk, with the member entering only
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == "points.expiring_soon"
    assert delivery.payload["data"]["member"] == str(entering.public_id)
    assert delivery.payload["data"]["points"] == 40


def test_a_delivery_verifies_with_a_standard_webhooks_library(make_channel, receiver):
    channel, _ = make_channel("pos")
    hook = receiver()
    subscribe(channel, hook.url, ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={"n": 1}, channel="pos")
    assert webhooks.delivery_send(delivery_id=delivery_id) is None
    headers, body = hook.requests[0]
    receiver_key = webhooks.standard_webhooks_secret(SECRET)
    assert receiver_key.startswith("whsec_")
    payload = Webhook(receiver_key).verify(body, headers)
    assert payload["data"] == {"n": 1}
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert headers["webhook-id"] == str(delivery.event_id)
    assert headers["webhook-timestamp"] == headers["X-Loyalty-Timestamp"]
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(webhooks.standard_webhooks_secret("another secret")).verify(body, headers)


def test_a_redirect_is_not_followed(make_channel, receiver):
    channel, _ = make_channel("pos")
    inside = receiver()
    hook = receiver(statuses=(302,), headers={"Location": inside.url})
    subscribe(channel, hook.url, ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")
    assert webhooks.delivery_send(delivery_id=delivery_id) == 30
    assert len(hook.requests) == 1 and inside.requests == []
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.response_status) == ("pending", 302)
    assert delivery.last_error == "HTTP 302"


def test_only_the_status_of_an_answer_is_kept(make_channel, receiver):
    channel, _ = make_channel("pos")
    hook = receiver(statuses=(500,))
    subscribe(channel, hook.url, ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")
    webhooks.delivery_send(delivery_id=delivery_id)
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    # The receiver answered "ok" in the body: none of it is stored.
    assert (delivery.response_status, delivery.last_error) == (500, "HTTP 500")


def test_a_timeout_is_a_short_note(make_channel, monkeypatch):
    channel, _ = make_channel("pos")
    subscribe(channel, "http://127.0.0.1:9/slow", ["points.earned"])
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")

    def post(*args, **kwargs):
        raise requests.ReadTimeout("HTTPConnectionPool(host='10.0.0.3'): internal detail")

    monkeypatch.setattr(requests, "post", post)
    assert webhooks.delivery_send(delivery_id=delivery_id) == 30
    assert WebhookDelivery.objects.get(pk=delivery_id).last_error == "timeout"


def _resolving(monkeypatch, address):
    def getaddrinfo(host, port, *args, **kwargs):
        assert host == "hooks.example.com"
        if address is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def post(*args, **kwargs):
        raise AssertionError("nothing may be sent")

    monkeypatch.setattr(requests, "post", post)


def test_a_host_that_now_resolves_inside_is_not_sent_to(make_channel, monkeypatch, settings):
    settings.LOYALTY_WEBHOOK_ALLOW_PRIVATE = False
    channel, _ = make_channel("pos")
    # Saved while the name was public; it now resolves to the metadata service.
    subscribe(channel, "https://hooks.example.com/hook", ["points.earned"])
    _resolving(monkeypatch, "169.254.169.254")
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")
    assert webhooks.delivery_send(delivery_id=delivery_id) is None
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    assert (delivery.response_status, delivery.last_error) == (None, "refused: private address")


def test_a_failed_lookup_is_retried(make_channel, monkeypatch, settings):
    settings.LOYALTY_WEBHOOK_ALLOW_PRIVATE = False
    channel, _ = make_channel("pos")
    subscribe(channel, "https://hooks.example.com/hook", ["points.earned"])
    _resolving(monkeypatch, None)
    [delivery_id] = webhooks.event_emit(event_type="points.earned", data={}, channel="pos")
    assert webhooks.delivery_send(delivery_id=delivery_id) == 30
    delivery = WebhookDelivery.objects.get(pk=delivery_id)
    assert (delivery.status, delivery.last_error) == ("pending", "DNS lookup failed")
