"""The channel API's Idempotency-Key records (invariant 4): claim, store, scrub, purge."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from ledger import errors
from ledger.models import IdempotencyRecord
from ledger.selectors import idempotency_records_expired
from members.models import Member


def idempotency_claim(*, channel: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Claim an Idempotency-Key for a channel request, or get the first answer to replay.

    Call it inside the same ``transaction.atomic()`` as the write it protects and call
    ``idempotency_store`` before that transaction commits. Returns:
    - ``None``: this request now owns the key; go on, then store the response.
    - an ``IdempotencyRecord`` with ``response_status``/``response_body``: replay it.
    Raises ``IdempotencyConflict`` when the key was used with another fingerprint, and
    ``IdempotencyInProgress`` when the first request has claimed but not stored (only possible
    when the caller claimed outside a transaction).

    One statement when the key is new (INSERT ... ON CONFLICT DO NOTHING, no savepoint). A
    concurrent retry with the same key waits on the unique index until the first transaction
    ends: then it either sees the stored answer or, if the first rolled back, owns the key.
    """
    # Hand-written because the ORM's ignore_conflicts cannot tell whether the row went in; the
    # statement is the same on PostgreSQL and SQLite (3.35+: ON CONFLICT with RETURNING).
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {IdempotencyRecord._meta.db_table} (channel, key, fingerprint, "
            "created_at) VALUES (%s, %s, %s, %s) ON CONFLICT (channel, key) DO NOTHING "
            "RETURNING id",
            [channel, key, fingerprint, timezone.now()],
        )
        if cursor.fetchone() is not None:
            return None
    record = IdempotencyRecord.objects.filter(channel=channel, key=key).first()
    if record is None:  # The other claimer's record was purged between our insert and read.
        return idempotency_claim(channel=channel, key=key, fingerprint=fingerprint)
    if record.fingerprint != fingerprint:
        raise errors.IdempotencyConflict()
    if record.response_status is None:
        raise errors.IdempotencyInProgress()
    return record


def idempotency_store(
    *, channel: str, key: str, response_status: int, response_body, fingerprint: str = ""
) -> None:
    """Store the answer to a claimed key, to be replayed to retries.

    The claim's row is this transaction's own (or, claimed outside one, this request's), so a
    plain UPDATE does. With ``fingerprint``, a key whose claim was rolled back (a refused write)
    is recorded afresh, unless another request has claimed it meanwhile: its answer then stands.
    """
    # Hand-written, as the claim is: every keyed write stores its answer here, and the ORM took
    # longer to compile this UPDATE than the database to run it.
    body = IdempotencyRecord._meta.get_field("response_body").get_db_prep_save(
        response_body, connection
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {IdempotencyRecord._meta.db_table} SET response_status = %s, "
            "response_body = %s WHERE channel = %s AND key = %s AND response_status IS NULL",
            [response_status, body, channel, key],
        )
        stored = cursor.rowcount
    if not stored and fingerprint:
        IdempotencyRecord.objects.bulk_create(
            [
                IdempotencyRecord(
                    channel=channel,
                    key=key,
                    fingerprint=fingerprint,
                    response_status=response_status,
                    response_body=response_body,
                )
            ],
            ignore_conflicts=True,
        )


# Fields of a stored channel answer that carry personal data (the member resources of the API).
IDEMPOTENCY_PERSONAL_FIELDS = ("email", "first_name", "last_name", "phone", "birth_date")


@transaction.atomic
def idempotency_scrub(*, member: Member) -> int:
    """Blank the personal fields in stored answers about this member (erasure, invariant 8).

    The records stay, so a retried request still replays instead of writing again; only the
    copies of the member's personal data in their bodies go.
    """
    scrubbed = 0
    records = IdempotencyRecord.objects.select_for_update().filter(
        response_body__id=str(member.public_id)
    )
    for record in records:
        body = dict(record.response_body)
        for field in IDEMPOTENCY_PERSONAL_FIELDS:
            if body.get(field):
                body[field] = ""
        IdempotencyRecord.objects.filter(pk=record.pk).update(response_body=body)
        scrubbed += 1
    return scrubbed


def idempotency_purge(*, now: datetime | None = None, ids: list[int] | None = None) -> int:
    """Forget expired records (``ledger.selectors.idempotency_records_expired``); only those of
    ``ids`` when given (a chunk of the job). A second run finds them gone."""
    now = now or timezone.now()
    expired = idempotency_records_expired(now=now)
    if ids is not None:
        expired = expired.filter(pk__in=ids)
    deleted, _by_model = expired.delete()
    return deleted
