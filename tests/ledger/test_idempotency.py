from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.test import override_settings

from ledger import errors, services
from ledger.models import Entry, IdempotencyRecord
from ledger.selectors import balance_summary
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def _earn_once(*, channel: str, key: str, member, points: int) -> dict:
    """An earn behind an Idempotency-Key as the API does it: claim, write, store, one commit."""
    fingerprint = f"earn {member.pk} {points}"
    with transaction.atomic():
        record = services.idempotency_claim(channel=channel, key=key, fingerprint=fingerprint)
        if record is not None:
            return record.response_body
        entry = services.points_earn(member=member, points=points, channel=channel)
        body = {"entry": entry.pk, "balance": entry.balance_after}
        services.idempotency_store(
            channel=channel, key=key, response_status=201, response_body=body
        )
        return body


def test_a_keyed_earn_retried_replays_and_another_request_with_its_key_conflicts():
    member, other = MemberFactory(), MemberFactory()
    first = _earn_once(channel="pos", key="k1", member=member, points=10)
    again = _earn_once(channel="pos", key="k1", member=member, points=10)
    assert again == first == {"entry": Entry.objects.get().pk, "balance": 10}
    with pytest.raises(errors.IdempotencyConflict) as exc:
        _earn_once(channel="pos", key="k1", member=member, points=11)
    assert exc.value.code == "idempotency_conflict"
    with pytest.raises(errors.IdempotencyConflict):
        _earn_once(channel="pos", key="k1", member=other, points=10)
    # The same key from another channel is another request.
    assert _earn_once(channel="app", key="k1", member=member, points=10)["balance"] == 20
    assert balance_summary(member=member)["balance"] == 20
    assert balance_summary(member=other)["balance"] == 0
    assert Entry.objects.count() == 2


def test_idempotency_claim_and_store():
    assert services.idempotency_claim(channel="pos", key="a", fingerprint="f1") is None
    services.idempotency_store(channel="pos", key="a", response_status=201, response_body={"x": 1})
    record = services.idempotency_claim(channel="pos", key="a", fingerprint="f1")
    assert (record.response_status, record.response_body) == (201, {"x": 1})
    with pytest.raises(errors.IdempotencyConflict) as exc:
        services.idempotency_claim(channel="pos", key="a", fingerprint="f2")
    assert exc.value.code == "idempotency_conflict"
    assert services.idempotency_claim(channel="app", key="a", fingerprint="f2") is None
    with pytest.raises(errors.IdempotencyInProgress) as exc:
        services.idempotency_claim(channel="app", key="a", fingerprint="f2")
    assert exc.value.code == "idempotency_in_progress"


def test_a_refusal_whose_claim_rolled_back_is_recorded_afresh_unless_claimed_meanwhile():
    # The refused write rolled its claim back: with the fingerprint the answer is recorded anew.
    services.idempotency_store(
        channel="pos", key="r", response_status=409, response_body={"code": "x"}, fingerprint="f"
    )
    record = services.idempotency_claim(channel="pos", key="r", fingerprint="f")
    assert (record.response_status, record.response_body) == (409, {"code": "x"})
    # A request that claimed and answered the key in between keeps its answer.
    assert services.idempotency_claim(channel="pos", key="s", fingerprint="f") is None
    services.idempotency_store(channel="pos", key="s", response_status=201, response_body={"a": 1})
    services.idempotency_store(
        channel="pos", key="s", response_status=409, response_body={"code": "x"}, fingerprint="f"
    )
    stored = IdempotencyRecord.objects.get(key="s")
    assert (stored.response_status, stored.response_body) == (201, {"a": 1})


def test_idempotency_scrub_blanks_the_members_personal_fields_and_keeps_the_record():
    member = MemberFactory()
    mine = {"id": str(member.public_id), "email": "anna@example.nl", "phone": "", "points": 5}
    theirs = {"id": "someone-else", "email": "piet@example.nl"}
    IdempotencyRecord.objects.create(
        channel="app", key="mine", fingerprint="f", response_status=201, response_body=mine
    )
    IdempotencyRecord.objects.create(
        channel="app", key="theirs", fingerprint="f", response_status=201, response_body=theirs
    )
    assert services.idempotency_scrub(member=member) == 1
    assert IdempotencyRecord.objects.get(key="mine").response_body == {**mine, "email": ""}
    assert IdempotencyRecord.objects.get(key="theirs").response_body == theirs


def test_idempotency_purge():
    services.idempotency_claim(channel="pos", key="old", fingerprint="f")
    with override_settings(LOYALTY_IDEMPOTENCY_TTL_HOURS=1):
        assert services.idempotency_purge(now=datetime.now(UTC) + timedelta(hours=2)) == 1
    assert not IdempotencyRecord.objects.exists()
