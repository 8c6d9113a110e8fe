"""The `Idempotency-Key` header on every write (invariant 4).

The key is claimed in the write's own transaction (the ledger's `idempotency_claim`: an
INSERT ... ON CONFLICT DO NOTHING of an IdempotencyRecord, unique per channel and key), and the
answer is stored (`idempotency_store`) before it commits, so a record with a response always
means "written once, this was the answer". A concurrent request with the same key waits on the
unique index until the first one commits, then replays its answer; with a different body it gets
409 `idempotency_conflict`. A claim left without an answer (a claim made outside a transaction by
an older version, or a crash between statements) gives 409 `idempotency_in_progress` after
LOYALTY_IDEMPOTENCY_WAIT_SECONDS, until it is LOYALTY_IDEMPOTENCY_STALE_SECONDS old.

A write that fails rolls its claim back with it. An unexpected error (5xx) leaves nothing, so the
channel can retry with the same key. A refusal (4xx) wrote nothing and is then recorded in a
short transaction of its own, so that a retry gets the same answer; if a concurrent request with
the same key claimed it in between (it was waiting on the first one's claim), that request's
answer is the one kept and replayed: the write still happens at most once.

Size: a record keeps at most MAX_STORED_ANSWER_BYTES of answer (its JSON) for the 72 hours. A
larger answer (in practice a refusal listing a problem per item of a huge body) is stored as a
short marker, and a replay gets the first answer's status with the error body shape:
``{"code": <the first answer's code, or "answer_not_kept" for a success>, "detail": "The first
answer was too large to keep...", "fields": {}}`` and ``Idempotent-Replayed: true``. So a retry
still learns whether the write happened (the status) and why not (the code), and still writes
nothing; only the details are not repeated.

Busy: a write the database gave up on so that another could go on (a deadlock, SQLSTATE 40P01,
or a serialization failure, 40001) rolled back whole, claim included, and is simply run again,
up to ``members.busy.WRITE_RETRIES`` times after a short random pause (so that the two losers of
one deadlock do not meet again), with or without a key; the admin's writes share that mechanism
(``members.busy``). The lock order of ``ledger.services.posting`` keeps this rare; it is the
last line of defence, not the plan. When every attempt failed the channel gets 503 ``busy`` with
``Retry-After`` and nothing is stored: the same key then works.
"""

import functools
import hashlib
import json
import logging
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
from ledger.errors import IdempotencyConflict, IdempotencyInProgress
from ledger.models import IdempotencyRecord
from members.busy import WriteBusy, busy_retry, is_busy

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
_POLL_SECONDS = 0.05

# See "Size" above: the most of an answer a record keeps.
MAX_STORED_ANSWER_BYTES = 16 * 1024
ANSWER_NOT_KEPT = "answer_not_kept"

BUSY_RETRY_AFTER_SECONDS = 1


def _with_retries(view, write):
    """``write()``, run again when the database rolled it back as a deadlock's victim
    (``members.busy``, shared with the admin); when every attempt lost, 503 ``busy``."""
    try:
        return busy_retry(write)
    except WriteBusy as busy:
        response = view.handle_exception(busy)
    response["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


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
    """None when this request owns the key (in the open transaction); else the record to replay."""
    try:
        return ledger_services.idempotency_claim(channel=channel, key=key, fingerprint=fingerprint)
    except IdempotencyInProgress:
        if _take_over_stale(channel=channel, key=key):
            return None
        raise


def _stored_body(response):
    """The answer as kept for replays: itself, or a short marker when it is too large (see
    "Size" above); a huge refused body must not sit in the database for 72 hours."""
    rendered = JSONRenderer().render(response.data) or b"null"
    if len(rendered) <= MAX_STORED_ANSWER_BYTES:
        return json.loads(rendered)
    code = None
    if response.status_code >= 400 and isinstance(response.data, dict):
        code = response.data.get("code")  # a success's "code" is something else (a voucher)
    if not isinstance(code, str) or len(code) > 64:
        code = ANSWER_NOT_KEPT
    return {
        "code": code,
        "detail": str(
            _(
                "The first answer to this Idempotency-Key was too large to keep; its status is "
                "repeated, its details are not."
            )
        ),
        "fields": {},
    }


def _store(*, channel: str, key: str, response, fingerprint: str = "") -> None:
    ledger_services.idempotency_store(
        channel=channel,
        key=key,
        response_status=response.status_code,
        response_body=_stored_body(response),
        fingerprint=fingerprint,
    )


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
    """Wrap a write action of an APIView so that its `Idempotency-Key` header is honoured, and
    a write the database rolled back as a deadlock's victim is retried (see "Busy" above)."""

    @functools.wraps(action)
    def wrapper(view, request, *args, **kwargs):
        key = request.headers.get(HEADER, "").strip()
        if not key:
            return _with_retries(view, lambda: action(view, request, *args, **kwargs))
        if len(key) > MAX_KEY_LENGTH:
            raise exceptions.ValidationError(
                {HEADER: [_("At most %(n)d characters.") % {"n": MAX_KEY_LENGTH}]}
            )
        return _with_retries(view, lambda: _keyed(view, request, args, kwargs, key=key))

    def _keyed(view, request, args, kwargs, *, key):
        channel = request.user.channel.name
        fingerprint = request_fingerprint(request)
        deadline = time.monotonic() + settings.LOYALTY_IDEMPOTENCY_WAIT_SECONDS
        while True:
            try:
                return _write_once(
                    view, request, args, kwargs, channel=channel, key=key, fingerprint=fingerprint
                )
            except IdempotencyInProgress:
                # Outside the transaction: nothing is held while we wait for the answer.
                if time.monotonic() >= deadline:
                    raise
                time.sleep(_POLL_SECONDS)

    def _write_once(view, request, args, kwargs, *, channel, key, fingerprint):
        try:
            with transaction.atomic():
                record = _claim(channel=channel, key=key, fingerprint=fingerprint)
                if record is not None:
                    return _replay(record)
                request._idempotent_transaction = True
                response = action(view, request, *args, **kwargs)
                _store(channel=channel, key=key, response=response)
                return response
        except (IdempotencyInProgress, IdempotencyConflict):
            raise
        except Exception as exc:
            if is_busy(exc):
                raise  # Rolled back with its claim: _with_retries runs the write again.
            # The claim rolled back with the write. handle_exception re-raises what it cannot
            # turn into a response (an unexpected error): the key is then free for a retry.
            response = view.handle_exception(exc)
            if response.status_code < 500:
                # A refusal wrote nothing; storing it gives a retry the same answer.
                with transaction.atomic():
                    _store(channel=channel, key=key, response=response, fingerprint=fingerprint)
            return response

    return wrapper
