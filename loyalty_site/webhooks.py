"""Outgoing webhooks: events recorded as deliveries in the writer's transaction, sent after commit.

The services announce their changes with `members.events.event_emit`, inside the transaction
that makes them; `deliveries_record` listens (connected in `loyalty_site.apps`) and records one
delivery per matching subscription in that same transaction, so a rolled-back write sends
nothing and a committed one always has its delivery rows (an outbox). The Celery task posts each
delivery outside any transaction, signed twice with the subscription's secret:

    X-Loyalty-Timestamp: <unix seconds>
    X-Loyalty-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">

and, for receivers that use a Standard Webhooks library (https://www.standardwebhooks.com/):

    webhook-id: <the event's id; the same on every retry and replay>
    webhook-timestamp: <unix seconds>
    webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">

Both use the subscription's secret, as its UTF-8 bytes, as the key. A Standard Webhooks library
takes that key as ``whsec_`` + base64 of those bytes (`standard_webhooks_secret`; the admin
shows it on the subscription), so the receiver needs no second secret.

Before each attempt the URL is checked again (`webhook_targets.target_check`: a name may now
resolve inside the network); redirects are not followed. A failure is retried with exponential
back-off up to LOYALTY_WEBHOOK_MAX_ATTEMPTS attempts. A delivery keeps the answer's status and a
short note ("HTTP 500", "timeout"), never the answer's body: the receiver's words are not shown
to staff.
"""

import base64
import hashlib
import hmac
import json
import uuid
from datetime import timedelta

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from ledger import selectors as ledger_selectors
from loyalty_site.models import WebhookDelivery, WebhookSubscription
from loyalty_site.webhook_targets import TargetRefused, target_check
from members import config_cache
from members.events import Event, events_emitted
from members.models import Member

SIGNATURE_HEADER = "X-Loyalty-Signature"
TIMESTAMP_HEADER = "X-Loyalty-Timestamp"

SUBSCRIPTIONS_CACHE = "webhook-subscriptions"


def _subscriptions() -> list[tuple[int, str, list, bool]]:
    # Kept per process for LOYALTY_WEBHOOK_CACHE_SECONDS, so that a write with no subscriber
    # for its event costs no query.
    return config_cache.cached(
        SUBSCRIPTIONS_CACHE,
        lambda: list(
            WebhookSubscription.objects.filter(active=True, channel__active=True).values_list(
                "id", "channel__name", "event_types", "all_channels"
            )
        ),
        ttl=settings.LOYALTY_WEBHOOK_CACHE_SECONDS,
    )


def subscriptions_cache_clear() -> None:
    config_cache.forget(SUBSCRIPTIONS_CACHE)


def sign(*, secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def standard_webhooks_secret(secret: str) -> str:
    """The subscription's secret in the form Standard Webhooks libraries take (``whsec_``…)."""
    return "whsec_" + base64.b64encode(secret.encode()).decode()


def _failure_note(exc: requests.RequestException) -> str:
    # Our own words only: an exception's text can quote the receiver or our proxy.
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return "request failed"


def deliveries_record(*, events: list[Event]) -> list[int]:
    """Record one delivery per event and matching subscription; they are sent once the
    transaction commits. Returns the new deliveries' ids.

    An event with a ``dedupe_key`` gets no delivery for a subscription that already has one with
    that key (ON CONFLICT DO NOTHING on the (subscription, dedupe_key) constraint: an insert
    racing another transaction's insert of the same key waits for it and is skipped once it
    commits).
    """
    subscriptions = _subscriptions()
    plain, deduped = [], []
    for event in events:
        targets = [
            sub_id
            for sub_id, sub_channel, types, all_channels in subscriptions
            if event.type in types
            and (all_channels or (event.channel and sub_channel == event.channel))
        ]
        if not targets:
            continue
        event_id = uuid.uuid4()
        payload = json.loads(
            json.dumps(
                {
                    "id": str(event_id),
                    "type": event.type,
                    "created_at": timezone.now().isoformat(),
                    "channel": event.channel,
                    "data": event.data,
                },
                cls=DjangoJSONEncoder,
            )
        )
        rows = deduped if event.dedupe_key else plain
        rows += [
            WebhookDelivery(
                subscription_id=sub_id,
                event_id=event_id,
                event_type=event.type,
                dedupe_key=event.dedupe_key,
                payload=payload,
            )
            for sub_id in targets
        ]
    ids = [delivery.pk for delivery in WebhookDelivery.objects.bulk_create(plain)]
    if deduped:
        # Skipped rows get no id back, so the new ones are found by their events' ids.
        WebhookDelivery.objects.bulk_create(deduped, ignore_conflicts=True)
        ids += (
            WebhookDelivery.objects.filter(event_id__in={row.event_id for row in deduped})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
    if ids:
        transaction.on_commit(lambda: _schedule(ids))
    return ids


def event_emit(
    *, event_type: str, data: dict, channel: str = "", dedupe_key: str = ""
) -> list[int]:
    """Record the deliveries of one event (see `deliveries_record`) and return their ids.

    For this app's own jobs; the other apps announce through `members.events`.
    """
    return deliveries_record(
        events=[Event(type=event_type, data=data, channel=channel, dedupe_key=dedupe_key)]
    )


def _on_events(sender, *, events, **kwargs) -> None:
    deliveries_record(events=events)


def events_listen() -> None:
    """Turn every announced domain event into deliveries (called once, at start-up)."""
    events_emitted.connect(_on_events, dispatch_uid="loyalty_site.webhooks")


def _expiring_soon_rows(*, now, member_ids=None) -> list[dict]:
    # Only expiries that entered the horizon in the last day (see below).
    days = settings.LOYALTY_WEBHOOK_EXPIRING_DAYS
    horizon_start = now + timedelta(days=days - 1)
    return [
        row
        for row in ledger_selectors.points_expiring_soon(days=days, now=now, member_ids=member_ids)
        if row["first_expiry"] > horizon_start
    ]


def members_expiring_soon(*, now) -> list[int]:
    """The members `points_expiring_soon_announce` announces at ``now``, in id order (what the
    daily job splits in chunks)."""
    return sorted(row["member_id"] for row in _expiring_soon_rows(now=now))


def points_expiring_soon_announce(*, now=None, member_ids: list[int] | None = None) -> int:
    """A `points.expiring_soon` event per member whose first expiring points come within
    LOYALTY_WEBHOOK_EXPIRING_DAYS days. Only expiries entering that horizon in the last day are
    announced, so one daily run announces each expiry date once; the dedupe key keeps it once
    when the job runs again within the day (a retry, a manual run, a chunk delivered again) or on
    two workers at once. ``member_ids`` limits it to those members (a chunk of the job).
    Returns how many members were announced now."""
    now = now or timezone.now()
    days = settings.LOYALTY_WEBHOOK_EXPIRING_DAYS
    rows = _expiring_soon_rows(now=now, member_ids=member_ids)
    public_ids = dict(
        Member.objects.filter(pk__in=[r["member_id"] for r in rows]).values_list("pk", "public_id")
    )
    announced = 0
    for row in rows:
        public_id, expires_at = public_ids[row["member_id"]], row["first_expiry"]
        ids = event_emit(
            event_type="points.expiring_soon",
            data={"member": public_id, "points": row["points"], "expires_at": expires_at},
            # The member's lots expiring at that instant, announced this many days ahead.
            dedupe_key=f"points.expiring_soon:{public_id}:{expires_at.isoformat()}:{days}d",
        )
        announced += bool(ids)
    return announced


def _schedule(ids: list[int]) -> None:
    from loyalty_site.tasks import webhook_deliver

    for delivery_id in ids:
        webhook_deliver.delay(delivery_id)


def retry_delay(attempts: int) -> int:
    """Seconds before the next attempt: base · 2^(attempts-1), at most
    LOYALTY_WEBHOOK_RETRY_MAX_SECONDS (below the broker's visibility timeout, which would
    otherwise deliver the waiting retry twice)."""
    return min(
        settings.LOYALTY_WEBHOOK_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0),
        settings.LOYALTY_WEBHOOK_RETRY_MAX_SECONDS,
    )


def delivery_send(*, delivery_id: int) -> int | None:
    """Post one pending delivery. Returns the seconds to wait before a retry, or None when done.

    The row is claimed with a conditional UPDATE, so a delivery is sent by one worker at a time;
    the HTTP call happens outside any transaction.
    """
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=WebhookDelivery.Status.PENDING
    ).update(status=WebhookDelivery.Status.SENDING, last_attempt_at=timezone.now())
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    now = timezone.now()
    timestamp = str(int(now.timestamp()))
    secret = delivery.subscription.secret
    message_id = str(delivery.event_id)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "loyalty-webhooks/1",
        "X-Loyalty-Event": delivery.event_type,
        "X-Loyalty-Delivery": message_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret=secret, timestamp=timestamp, body=body),
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": Webhook(secret.encode()).sign(
            msg_id=message_id, timestamp=now, data=body.decode()
        ),
    }
    status_code, error, final = None, "", False
    try:
        target_check(delivery.subscription.url)
    except TargetRefused as refused:
        error, final = refused.note, refused.final
    else:
        try:
            answer = requests.post(
                delivery.subscription.url,
                data=body,
                headers=headers,
                timeout=settings.LOYALTY_WEBHOOK_TIMEOUT_SECONDS,
                # A redirect could lead anywhere, inside the network too: it counts as a failure.
                allow_redirects=False,
                # Only the status is kept: the body is never read.
                stream=True,
            )
            status_code = answer.status_code
            answer.close()
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except requests.RequestException as exc:
            error = _failure_note(exc)
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "response_status": status_code, "last_error": error}
    if status_code is not None and 200 <= status_code < 300:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now())
        wait = None
    elif final or attempts >= settings.LOYALTY_WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=WebhookDelivery.Status.FAILED)
        wait = None
    else:
        fields.update(status=WebhookDelivery.Status.PENDING)
        wait = retry_delay(attempts)
    WebhookDelivery.objects.filter(pk=delivery_id).update(**fields)
    return wait


@transaction.atomic
def delivery_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivery again (from the admin): a fresh pending row with the same event."""
    copy = WebhookDelivery.objects.create(
        subscription_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        payload=delivery.payload,
    )
    transaction.on_commit(lambda: _schedule([copy.pk]))
    return copy


def deliveries_purgeable(*, now):
    """Sent or failed deliveries older than LOYALTY_WEBHOOK_KEEP_DAYS at ``now``."""
    cutoff = now - timedelta(days=settings.LOYALTY_WEBHOOK_KEEP_DAYS)
    return WebhookDelivery.objects.filter(
        created_at__lt=cutoff,
        status__in=[WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED],
    )


def deliveries_purge(*, now=None, ids: list[int] | None = None) -> int:
    """Delete what ``deliveries_purgeable`` lists; only those of ``ids`` when given (a chunk of
    the job). A second run finds them gone."""
    now = now or timezone.now()
    due = deliveries_purgeable(now=now)
    if ids is not None:
        due = due.filter(pk__in=ids)
    deleted, _detail = due.delete()
    return deleted
