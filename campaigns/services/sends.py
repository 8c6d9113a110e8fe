"""Sending a campaign's messages: at most once per member and channel, only with consent, and
within the frequency caps (DESIGN.md invariant 6).

Planning (`campaign_send_start`) writes one `CampaignMessage` per audience member and channel
the campaign has a template for, in one INSERT ... SELECT per channel with ON CONFLICT DO
NOTHING on the unique (campaign, member, channel): planning twice plans nothing twice, and no
member list passes through Python. Members of the campaign's control group are written
suppressed (reason "control") and are never claimed, so never contacted.

Sending (`messages_send`, one chunk of message ids) takes each message in three steps, so that
no I/O happens while a row lock is held:

1. Claim, in one short transaction: lock the member row (FOR NO KEY UPDATE, first in the lock
   order of campaigns.services.locks), then the message row; check the consent at this moment,
   a usable address and the frequency caps (counting the member's messages that took a slot:
   sending or sent, of capped campaigns, in each rule's window). Either the message is
   suppressed with its reason, or it becomes ``sending`` with a lease (LOYALTY_MESSAGE_LEASE_
   SECONDS) and a fresh lease token, and takes its cap slot. Because the member row is locked,
   two campaigns sending to one member at once cannot both take the last slot.
2. Render and call the backend with the message's idempotency key, outside any transaction.
3. Record sent (with the provider id) or failed (with the reason; retried with back-off until
   LOYALTY_MESSAGE_MAX_ATTEMPTS), by a conditional UPDATE that only the lease's holder passes.

Exactly once. A second run, a retried chunk or a chunk delivered twice finds a message sent,
suppressed or ``sending`` under a live lease, and skips it. A worker that dies between the
backend call and the record leaves the message ``sending``; once its lease has expired the next
run asks the backend whether that message id was delivered (``delivered``) and records it sent
if so; only if the backend says no (or cannot tell) is it sent again, with the same
idempotency key, which a provider dedupes by. So the database guarantees at most one message
per (campaign, member, channel) and one backend call at a time per message; a second delivery
to a person needs a worker lost after the call and a backend that neither confirms nor dedupes
by message id (plain SMTP can do neither: the Message-ID header is the best it gets).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from campaigns import control
from campaigns.backends import DeliveryRefused, MessageBackend, backend_for
from campaigns.errors import CampaignNotSendable, MessageTemplateMissing
from campaigns.message_rendering import CampaignTemplates, language_of
from campaigns.models import (
    Campaign,
    CampaignMessage,
    Channel,
    FrequencyCap,
    MessageTemplate,
    SegmentSnapshotMember,
)
from members import selectors as member_selectors
from members.models import Consent, Member

logger = logging.getLogger(__name__)

CONSENT_FOR_CHANNEL = {
    Channel.EMAIL: Consent.Purpose.MARKETING_EMAIL,
    Channel.SMS: Consent.Purpose.SMS,
    Channel.PUSH: Consent.Purpose.PUSH,
}
# A retry waits at most this long: below the broker's default visibility timeout.
RETRY_MAX_SECONDS = 1200

Status = CampaignMessage.Status
Suppression = CampaignMessage.Suppression


def address_of(member: Member, channel: str) -> str:
    """Where a message on `channel` reaches `member`; "" when it cannot.

    Push goes to the member's public id, under which the app registers its devices with the
    push provider, so an active member is reachable by push once they consent to it.
    """
    if member.status != Member.Status.ACTIVE:
        return ""
    if channel == Channel.EMAIL:
        return member.email
    if channel == Channel.SMS:
        return str(member.phone) if member.phone else ""
    return str(member.public_id)


def claimable_q(now: datetime) -> Q:
    """Messages a worker may claim at `now`: planned, failed and due again, or sending under an
    expired lease (its worker was lost)."""
    return (
        Q(status=Status.PLANNED)
        | Q(status=Status.FAILED, next_attempt_at__lte=now)
        | Q(status=Status.SENDING, lease_until__lt=now)
    )


@transaction.atomic
def campaign_send_start(
    *, campaign: Campaign, now: datetime | None = None, fan_out: bool = True
) -> int:
    """Plan the campaign's messages and (after commit) hand them to the workers in chunks.

    Returns how many messages were planned now: 0 when run again. Safe to run twice or at the
    same time as a send: it plans only what is missing and the chunks claim their messages.
    `fan_out=False` only plans (`manage.py campaign_send` then sends in its own process).
    """
    now = now or timezone.now()
    campaign = Campaign.objects.get(pk=campaign.pk)
    if campaign.status != Campaign.Status.ACTIVE or campaign.audience_id is None:
        raise CampaignNotSendable()
    channels = sorted(
        set(MessageTemplate.objects.filter(campaign=campaign).values_list("channel", flat=True))
    )
    if not channels:
        raise MessageTemplateMissing()
    # The control group by the member's bucket (campaigns.control), computed in the SELECT.
    audience = (
        SegmentSnapshotMember.objects.filter(snapshot_id=campaign.audience_id)
        .order_by()
        .annotate(bucket=control.bucket_expression(campaign.salt, "member_id"))
        .values_list("member_id", "bucket")
    )
    select, params = audience.query.sql_with_params()
    table = connection.ops.quote_name(CampaignMessage._meta.db_table)
    planned = 0
    with connection.cursor() as cursor:
        for channel in channels:
            cursor.execute(
                f"INSERT INTO {table} (campaign_id, member_id, channel, status, suppression, "  # noqa: S608 - names are ours
                "attempts, last_error, language, planned_at, provider_id) "
                "SELECT %s, chosen.member_id, %s, "
                "CASE WHEN chosen.bucket < %s THEN %s ELSE %s END, "
                "CASE WHEN chosen.bucket < %s THEN %s ELSE '' END, "
                f"0, '', '', %s, '' FROM ({select}) chosen "
                # SQLite reads an ON right after a FROM as a join's: the WHERE ends the SELECT.
                "WHERE 1 = 1 ON CONFLICT (campaign_id, member_id, channel) DO NOTHING",
                [
                    campaign.pk,
                    channel,
                    campaign.control_basis_points,
                    Status.SUPPRESSED,
                    Status.PLANNED,
                    campaign.control_basis_points,
                    Suppression.CONTROL,
                    connection.ops.adapt_datetimefield_value(now),
                    *params,
                ],
            )
            planned += cursor.rowcount
    if fan_out:
        from campaigns.tasks import messages_fan_out

        transaction.on_commit(lambda: messages_fan_out.delay(campaign.pk))
    logger.info("campaign messages planned", extra={"campaign_id": campaign.pk, "planned": planned})
    return planned


def messages_due(
    *, campaign: Campaign | None = None, now: datetime | None = None, retries_only: bool = False
) -> list[int]:
    """Ids of the messages of active campaigns a worker may claim now, in id order.

    `retries_only`: not the planned ones (their chunks are on their way), only failed messages
    due again and those under an expired lease (their worker was lost).
    """
    now = now or timezone.now()
    messages = CampaignMessage.objects.filter(
        claimable_q(now), campaign__status=Campaign.Status.ACTIVE
    )
    if retries_only:
        messages = messages.exclude(status=Status.PLANNED)
    if campaign is not None:
        messages = messages.filter(campaign=campaign)
    return list(messages.order_by("pk").values_list("pk", flat=True))


def messages_due_ids(
    *, campaign: Campaign, now: datetime | None = None, page: int = 10_000
) -> Iterator[int]:
    """`messages_due` of one campaign, read a page at a time by id (keyset): a send to a
    million members hands out its chunks without holding a million ids, and without a
    transaction held open over the whole read."""
    now = now or timezone.now()
    messages = CampaignMessage.objects.filter(
        claimable_q(now), campaign=campaign, campaign__status=Campaign.Status.ACTIVE
    ).order_by("pk")
    last = 0
    while ids := list(messages.filter(pk__gt=last).values_list("pk", flat=True)[:page]):
        yield from ids
        last = ids[-1]


@dataclass
class SendResult:
    """What one chunk did: counts per outcome ("sent", "suppressed", "failed": no attempt
    left, "retry": failed with a retry due later, "busy": another worker holds it, "done":
    nothing left to do, "paused": the campaign is not active)."""

    outcomes: Counter = field(default_factory=Counter)


class _Chunk:
    """Per-chunk caches: the campaigns' templates, the backends, the cap rules."""

    def __init__(self):
        self.templates: dict[int, CampaignTemplates] = {}
        self.backends: dict[str, MessageBackend] = {}
        self.caps = list(FrequencyCap.objects.filter(active=True))

    def templates_of(self, campaign: Campaign) -> CampaignTemplates:
        if campaign.pk not in self.templates:
            self.templates[campaign.pk] = CampaignTemplates(campaign)
        return self.templates[campaign.pk]

    def backend(self, channel: str) -> MessageBackend:
        if channel not in self.backends:
            self.backends[channel] = backend_for(channel)
        return self.backends[channel]


def messages_send(*, message_ids: list[int]) -> SendResult:
    """Send a chunk of messages, each at most once (see the module docstring). Safe to run twice,
    or at the same time on two workers: each message is claimed by one of them."""
    result = SendResult()
    chunk = _Chunk()
    for message_id in message_ids:
        result.outcomes[_message_send(message_id, chunk)] += 1
    return result


def _message_send(message_id: int, chunk: _Chunk) -> str:
    message = CampaignMessage.objects.select_related("campaign").filter(pk=message_id).first()
    if message is None:
        return "done"
    backend = chunk.backend(message.channel)
    now = timezone.now()
    if message.status == Status.SENDING and message.lease_until < now:
        # Its worker was lost after the claim: maybe after the backend took the message. Ask
        # the backend (outside any lock) before sending it again.
        provider_id = backend.delivered(message.idempotency_key)
        if provider_id:
            _record_sent(message, token=message.lease_token, provider_id=provider_id)
            return "sent"
    claim = _claim(message.pk, chunk)
    if not isinstance(claim, CampaignMessage):
        return claim
    message = claim
    try:
        rendered = chunk.templates_of(message.campaign).render(
            channel=message.channel, member=message.member, language=message.language
        )
        provider_id = backend.send(
            message.idempotency_key,
            address_of(message.member, message.channel),
            rendered.subject,
            rendered.body,
            html_body=rendered.html_body,
        )
    except Exception as exc:  # noqa: BLE001 - any provider failure is recorded on the message
        return _record_failed(message, error=exc)
    _record_sent(message, token=message.lease_token, provider_id=str(provider_id))
    return "sent"


@transaction.atomic
def _claim(message_id: int, chunk: _Chunk) -> CampaignMessage | str:
    """Under the member's lock: suppress the message, or claim it (sending, with a lease)."""
    member_id = CampaignMessage.objects.values_list("member_id", flat=True).get(pk=message_id)
    # Lock order: the member row first (campaigns.services.locks), then the message row. FOR NO
    # KEY UPDATE, like member_lock: purchases and redemptions serialise with this as they do
    # with each other, and foreign-key checks on the member pass.
    member = (
        Member.objects.select_for_update(no_key=True, of=("self",))
        .select_related("tier")
        .get(pk=member_id)
    )
    message = (
        CampaignMessage.objects.select_for_update(of=("self",))
        .select_related("campaign")
        .get(pk=message_id)
    )
    message.member = member
    now = timezone.now()
    if not _claimable(message, now):
        if message.status == Status.SENDING:
            return "busy"
        if message.status == Status.FAILED and message.next_attempt_at is not None:
            return "retry"
        return "done"
    if message.campaign.status != Campaign.Status.ACTIVE:
        return "paused"
    if (
        message.status == Status.SENDING
        and message.attempts >= settings.LOYALTY_MESSAGE_MAX_ATTEMPTS
    ):
        # Its worker was lost during the last attempt and the backend did not confirm it.
        _update(
            message,
            status=Status.FAILED,
            next_attempt_at=None,
            lease_until=None,
            lease_token=None,
            claimed_at=None,
            last_error="Worker lost during the last attempt.",
        )
        return "failed"
    reason = _suppression(message, member, chunk, now)
    if reason:
        _update(
            message,
            status=Status.SUPPRESSED,
            suppression=reason,
            lease_until=None,
            lease_token=None,
            next_attempt_at=None,
        )
        return "suppressed"
    _update(
        message,
        status=Status.SENDING,
        lease_until=now + timedelta(seconds=settings.LOYALTY_MESSAGE_LEASE_SECONDS),
        lease_token=uuid.uuid4(),
        claimed_at=now,
        attempts=message.attempts + 1,
        next_attempt_at=None,
        language=message.language or language_of(member),
    )
    return message


def _claimable(message: CampaignMessage, now: datetime) -> bool:
    """claimable_q, for the locked row in hand."""
    if message.status == Status.PLANNED:
        return True
    if message.status == Status.FAILED:
        return message.next_attempt_at is not None and message.next_attempt_at <= now
    return message.status == Status.SENDING and message.lease_until < now


def _suppression(message: CampaignMessage, member: Member, chunk: _Chunk, now: datetime) -> str:
    purpose = CONSENT_FOR_CHANNEL[message.channel]
    if not member_selectors.consent_granted(member=member, purpose=purpose):
        return Suppression.NO_CONSENT
    if not address_of(member, message.channel):
        return Suppression.UNREACHABLE
    if message.campaign.frequency_capped and _capped(message, chunk.caps, now):
        return Suppression.CAPPED
    return ""


def _capped(message: CampaignMessage, caps: list[FrequencyCap], now: datetime) -> bool:
    """Whether any rule that covers this channel is full for the member (the strictest wins).

    Counted: the member's messages that took a slot (sending or sent; a failed one gave it
    back) of capped campaigns, claimed within the rule's window; service messages do not count.
    """
    rules = [cap for cap in caps if cap.channel in ("", message.channel)]
    if not rules:
        return False
    taken = CampaignMessage.objects.filter(
        member_id=message.member_id,
        status__in=[Status.SENDING, Status.SENT],
        campaign__frequency_capped=True,
        claimed_at__gte=now - max(rule.window for rule in rules),
    ).exclude(pk=message.pk)
    counts = taken.aggregate(
        **{
            f"rule_{i}": Count(
                "pk",
                filter=Q(claimed_at__gte=now - rule.window)
                & (Q(channel=rule.channel) if rule.channel else Q()),
            )
            for i, rule in enumerate(rules)
        }
    )
    return any(counts[f"rule_{i}"] >= rule.max_messages for i, rule in enumerate(rules))


def _update(message: CampaignMessage, **fields) -> None:
    for name, value in fields.items():
        setattr(message, name, value)
    CampaignMessage.objects.filter(pk=message.pk).update(**fields)


def _record_sent(message: CampaignMessage, *, token, provider_id: str) -> bool:
    """Sent, if the claim is still this worker's (a worker that lost its lease records nothing:
    the message is the new holder's, who asks the backend, which dedupes by message id)."""
    return bool(
        CampaignMessage.objects.filter(
            pk=message.pk, status=Status.SENDING, lease_token=token
        ).update(
            status=Status.SENT,
            sent_at=timezone.now(),
            provider_id=provider_id[:255],
            lease_until=None,
            lease_token=None,
            last_error="",
        )
    )


def retry_delay(attempts: int) -> int:
    """Seconds before attempt `attempts + 1`: base · 2^(attempts-1), at most 20 minutes."""
    delay = settings.LOYALTY_MESSAGE_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return min(delay, RETRY_MAX_SECONDS)


def _record_failed(message: CampaignMessage, *, error: Exception) -> str:
    final = isinstance(error, DeliveryRefused | MessageTemplateMissing) or (
        message.attempts >= settings.LOYALTY_MESSAGE_MAX_ATTEMPTS
    )
    now = timezone.now()
    logger.warning(
        "campaign message failed",
        extra={"message_id": message.pk, "attempts": message.attempts, "final": final},
        exc_info=not isinstance(error, DeliveryRefused),
    )
    CampaignMessage.objects.filter(
        pk=message.pk, status=Status.SENDING, lease_token=message.lease_token
    ).update(
        status=Status.FAILED,
        last_error=f"{type(error).__name__}: {error}"[:1000],
        next_attempt_at=None if final else now + timedelta(seconds=retry_delay(message.attempts)),
        lease_until=None,
        lease_token=None,
        # The slot is given back: a failed message did not reach the member.
        claimed_at=None,
    )
    return "failed" if final else "retry"


def messages_progress(*, campaign: Campaign) -> dict[str, int]:
    """Messages of the campaign per status, and the suppressed ones per reason."""
    rows = (
        CampaignMessage.objects.filter(campaign=campaign)
        .values("status", "suppression")
        .annotate(n=Count("pk"))
        .order_by()
    )
    progress: Counter = Counter()
    for row in rows:
        progress[row["status"]] += row["n"]
        if row["suppression"]:
            progress[f"suppressed_{row['suppression']}"] += row["n"]
    return dict(progress)
