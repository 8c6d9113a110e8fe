"""The `Idempotency-Key` header on every write (invariant 4).

The key is claimed first, in its own short transaction (the ledger's `idempotency_claim`
inserts an IdempotencyRecord without a response, unique per channel and key). Only the request
that inserted the row does the write; the write and its stored response (`idempotency_store`)
then commit together, so a record with a response always means "written once, this was the
answer". A second request with the same key waits for the first one's answer and replays it, or
gets 409 `idempotency_in_progress` if that takes longer than LOYALTY_IDEMPOTENCY_WAIT_SECONDS;
with a different body it gets 409 `idempotency_conflict`. A request that fails with an
unexpected error releases its claim so that the channel can retry with the same key.
"""

import functools
import hashlib
import json
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from ledger import services as ledger_services
from ledger.errors import IdempotencyInProgress
from ledger.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_POLL_SECONDS = 0.05


def request_fingerprint(request) -> str:
    # Parsed and re-serialised with sorted keys, so spacing and key order do not matter.
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    raw = f"{request.method} {request.path}\n{body}"
    return hashlib.sha256(raw.encode()).hexdigest()


def _take_over_stale(*, channel: str, key: str) -> bool:
    """A claim left without an answer by a crashed process (whose write rolled back) is reused."""
    cutoff = timezone.now() - timedelta(seconds=settings.LOYALTY_IDEMPOTENCY_STALE_SECONDS)
    return bool(
        IdempotencyRecord.objects.filter(
            channel=channel, key=key, response_status__isnull=True, created_at__lt=cutoff
        ).update(created_at=timezone.now())
    )


def _claim(*, channel: str, key: str, fingerprint: str):
    """None when this request owns the key; else the stored record to replay."""
    deadline = time.monotonic() + settings.LOYALTY_IDEMPOTENCY_WAIT_SECONDS
    while True:
        try:
            # Outside any transaction: the claim commits at once and is visible to others.
            return ledger_services.idempotency_claim(
                channel=channel, key=key, fingerprint=fingerprint
            )
        except IdempotencyInProgress:
            if _take_over_stale(channel=channel, key=key):
                return None
            if time.monotonic() >= deadline:
                raise
            time.sleep(_POLL_SECONDS)


def _store(*, channel: str, key: str, response) -> None:
    body = json.loads(JSONRenderer().render(response.data) or b"null")
    ledger_services.idempotency_store(
        channel=channel, key=key, response_status=response.status_code, response_body=body
    )


def _release(*, channel: str, key: str) -> None:
    IdempotencyRecord.objects.filter(
        channel=channel, key=key, response_status__isnull=True
    ).delete()


def _replay(record) -> Response:
    response = Response(record.response_body, status=record.response_status)
    response["Idempotent-Replayed"] = "true"
    return response


def write_atomic(request):
    """The transaction of a write: the idempotency record's own when there is one.

    Inside it a savepoint would only add two statements; when there is none the view opens its
    own (a savepoint if a caller, such as a test, holds a transaction already).
    """
    if getattr(request, "_idempotent_transaction", False):
        return transaction.atomic(savepoint=False)
    return transaction.atomic()


def idempotent(action):
    """Wrap a write action of an APIView so that its `Idempotency-Key` header is honoured."""

    @functools.wraps(action)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return action(view, request, *args, **kwargs)
        if len(key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError(
                {HEADER: [_("At most %(n)d characters.") % {"n": MAX_KEY_LENGTH}]}
            )
        channel = request.user.channel.name
        record = _claim(channel=channel, key=key, fingerprint=request_fingerprint(request))
        if record is not None:
            return _replay(record)
        try:
            with transaction.atomic():
                request._idempotent_transaction = True
                response = action(view, request, *args, **kwargs)
                _store(channel=channel, key=key, response=response)
        except Exception as exc:
            try:
                response = view.handle_exception(exc)
            except Exception:
                _release(channel=channel, key=key)
                raise
            if response.status_code >= 500:
                _release(channel=channel, key=key)
            else:
                # A refusal wrote nothing; storing it gives a retry the same answer.
                with transaction.atomic():
                    _store(channel=channel, key=key, response=response)
        return response

    return wrapper
