"""Where campaign messages leave the programme: one backend per channel.

E-mail goes through Django's e-mail backends (settings.EMAIL_BACKEND: the console in the
embedded mode, SMTP or a provider's backend in production). SMS and push go through the small
interface below, chosen by settings.LOYALTY_SMS_BACKEND and LOYALTY_PUSH_BACKEND; the logging
implementations write each message to the log, for the embedded mode and until a provider is
wired in.

The interface is what makes a send exactly once (see campaigns.services.sends):
``send(message_id, to, subject, body) -> provider_id`` is called with the same `message_id`
for every attempt of one message, and a backend is expected to deliver a message id once (a
provider's idempotency key; the logging and e-mail backends keep a record of the ids they sent
in the process). ``delivered(message_id) -> provider_id | None`` says whether it did: a worker
taking over a message whose previous worker died mid-send asks it before sending again. A
backend that cannot tell returns None, and the message is sent again with the same id, for the
provider to drop.

A failure the provider reports as final (an address it will never deliver to) is raised as
`DeliveryRefused` and not retried; any other exception is retried with back-off.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import DNS_NAME
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class DeliveryRefused(Exception):
    """The provider will never deliver this message (a bad address): do not retry."""


class MessageBackend:
    def send(
        self, message_id: str, to: str, subject: str, body: str, *, html_body: str = ""
    ) -> str:
        """Deliver the message once per `message_id`; return the provider's id for it."""
        raise NotImplementedError

    def delivered(self, message_id: str) -> str | None:
        """The provider's id if this message id was delivered already; None if not or unknown."""
        return None


class _SentRecord:
    """The message ids a backend sent from this process (the last 100,000), with their provider
    ids: a retry or a redelivered chunk in the same process is answered from here."""

    def __init__(self, size: int = 100_000):
        self._ids: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self._size = size

    def get(self, message_id: str) -> str | None:
        with self._lock:
            return self._ids.get(message_id)

    def put(self, message_id: str, provider_id: str) -> None:
        with self._lock:
            self._ids[message_id] = provider_id
            while len(self._ids) > self._size:
                self._ids.popitem(last=False)


class _RecordingDedupe(MessageBackend):
    """A backend that answers a repeated message id from its own record."""

    record: _SentRecord

    def send(self, message_id, to, subject, body, *, html_body=""):
        known = self.record.get(message_id)
        if known is not None:
            logger.info("message already sent", extra={"message_id": message_id})
            return known
        provider_id = self.deliver(message_id, to, subject, body, html_body=html_body)
        self.record.put(message_id, provider_id)
        return provider_id

    def delivered(self, message_id):
        return self.record.get(message_id)

    def deliver(self, message_id, to, subject, body, *, html_body=""):
        raise NotImplementedError


class LoggingSmsBackend(_RecordingDedupe):
    record = _SentRecord()

    def deliver(self, message_id, to, subject, body, *, html_body=""):
        provider_id = f"log-sms-{uuid.uuid4()}"
        logger.info(
            "sms",
            extra={"message_id": message_id, "to": to, "body": body, "provider_id": provider_id},
        )
        return provider_id


class LoggingPushBackend(_RecordingDedupe):
    """Push to a member's app: `to` is the member's public id, the usual external user id of
    push providers (the app registers its devices under it)."""

    record = _SentRecord()

    def deliver(self, message_id, to, subject, body, *, html_body=""):
        provider_id = f"log-push-{uuid.uuid4()}"
        logger.info(
            "push",
            extra={
                "message_id": message_id,
                "to": to,
                "title": subject,
                "body": body,
                "provider_id": provider_id,
            },
        )
        return provider_id


class EmailBackend(_RecordingDedupe):
    """E-mail through settings.EMAIL_BACKEND, with the message id as the Message-ID header (the
    provider id), so that a provider or the receiving side can drop a second copy."""

    record = _SentRecord()

    def deliver(self, message_id, to, subject, body, *, html_body=""):
        message_header = f"<{message_id}@{DNS_NAME}>"
        email = EmailMultiAlternatives(
            subject=subject,
            body=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[to],
            headers={"Message-ID": message_header, "X-Loyalty-Message-Id": message_id},
            connection=get_connection(fail_silently=False),
        )
        if html_body:
            email.attach_alternative(html_body, "text/html")
        email.send()
        return message_header


class RecordingBackend(MessageBackend):
    """For tests: every call is recorded on the class; a message id is delivered once.

    `fail` maps a recipient to the exception its sends raise (a failing provider)."""

    calls: list[tuple[str, str, str, str]] = []
    delivered_ids: dict[str, str] = {}
    fail: dict[str, Exception] = {}
    _lock = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.calls, cls.delivered_ids, cls.fail = [], {}, {}

    def send(self, message_id, to, subject, body, *, html_body=""):
        with self._lock:
            self.calls.append((message_id, to, subject, body))
            if to in self.fail:
                raise self.fail[to]
            return self.delivered_ids.setdefault(message_id, f"test-{message_id}")

    def delivered(self, message_id):
        return self.delivered_ids.get(message_id)


def backend_for(channel: str) -> MessageBackend:
    """The backend of a channel ("email", "sms" or "push"), as the settings name it."""
    if channel == "email":
        return EmailBackend()
    path = {"sms": settings.LOYALTY_SMS_BACKEND, "push": settings.LOYALTY_PUSH_BACKEND}[channel]
    return import_string(path)()
