"""loyalty_site's jobs: the daily `points.expiring_soon` announcement, run again and at once."""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from ledger import services as ledger_services
from loyalty_site import webhooks
from loyalty_site.models import Channel, WebhookDelivery, WebhookSubscription
from loyalty_site.tasks import points_expiring_soon_notify
from loyalty_site.webhooks import points_expiring_soon_announce
from tests.factories import MemberFactory


@pytest.fixture(autouse=True)
def _webhook_settings(settings):
    settings.LOYALTY_WEBHOOK_CACHE_SECONDS = 0
    settings.LOYALTY_WEBHOOK_EXPIRING_DAYS = 30
    webhooks.subscriptions_cache_clear()
    yield
    webhooks.subscriptions_cache_clear()


@pytest.fixture
def scheduled(monkeypatch):
    """The delivery ids handed to the sender after commit (no HTTP in these tests)."""
    sent = []
    lock = threading.Lock()

    def record(ids):
        with lock:
            sent.extend(ids)

    monkeypatch.setattr(webhooks, "_schedule", record)
    return sent


def _subscribe(name: str) -> WebhookSubscription:
    channel = Channel.objects.create(name=name, kind=Channel.Kind.APP)
    return WebhookSubscription.objects.create(
        channel=channel,
        url=f"https://{name}.example.com/hook",
        secret="s3cret",
        event_types=["points.expiring_soon"],
        all_channels=True,
    )


def _expiring_member():
    """A member whose 40 points enter the 30-day horizon today, and one already inside it."""
    now = timezone.now()
    entering, inside = MemberFactory(), MemberFactory()
    ledger_services.points_earn(
        member=entering, points=40, expires_at=now + timedelta(days=29, hours=12)
    )
    ledger_services.points_earn(member=inside, points=10, expires_at=now + timedelta(days=3))
    return entering


def _deliveries():
    return list(
        WebhookDelivery.objects.order_by("subscription_id").values_list(
            "subscription_id", "payload__data__member", "payload__data__points"
        )
    )


@pytest.mark.django_db
def test_running_the_job_twice_sends_one_delivery_per_subscription(
    scheduled, django_capture_on_commit_callbacks
):
    app, partner = _subscribe("app"), _subscribe("partner")
    member = _expiring_member()
    with django_capture_on_commit_callbacks(execute=True):
        assert points_expiring_soon_notify.delay().get() == 1  # one chunk of members
        # The second run's chunk finds the announcement made (its dedupe key): nothing new.
        assert points_expiring_soon_notify.delay().get() == 1
    assert _deliveries() == [
        (app.pk, str(member.public_id), 40),
        (partner.pk, str(member.public_id), 40),
    ]
    assert sorted(scheduled) == sorted(WebhookDelivery.objects.values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_subscription_added_between_runs_gets_its_own_announcement(scheduled):
    first = _subscribe("app")
    _expiring_member()
    assert points_expiring_soon_announce() == 1
    later = _subscribe("partner")
    assert points_expiring_soon_announce() == 1
    assert points_expiring_soon_announce() == 0
    counts = {
        sub: WebhookDelivery.objects.filter(subscription=sub).count() for sub in (first, later)
    }
    assert counts == {first: 1, later: 1}


def _a_backend_waits_on_a_lock(timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            # Inside a transaction PostgreSQL keeps showing the first snapshot of the view.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.02)
    return False


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_one_delivery_per_subscription(scheduled):
    if connection.vendor != "postgresql":
        pytest.skip("two connections writing at once need PostgreSQL")
    subscription = _subscribe("app")
    member = _expiring_member()
    inserted = threading.Event()
    results, failures = {}, []

    def first():
        try:
            with transaction.atomic():
                results["first"] = points_expiring_soon_announce()
                inserted.set()
                # Commit only once the second worker's insert of the same key waits on ours.
                results["second_waited"] = _a_backend_waits_on_a_lock()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)
            inserted.set()
        finally:
            connection.close()

    def second():
        try:
            inserted.wait(10)
            results["second"] = points_expiring_soon_announce()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            failures.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert failures == []
    assert (results["first"], results["second"]) == (1, 0)
    assert results["second_waited"] is True  # the two runs really overlapped
    assert _deliveries() == [(subscription.pk, str(member.public_id), 40)]
    assert scheduled == list(WebhookDelivery.objects.values_list("pk", flat=True))
