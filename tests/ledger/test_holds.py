from datetime import UTC, datetime

import pytest

from ledger import errors, services
from ledger.models import Entry, Hold
from ledger.selectors import balance_summary
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_hold_lifecycle(assert_reconciled):
    member = MemberFactory()
    services.points_earn(member=member, points=100)
    hold = services.hold_place(member=member, points=60, reference="r1")
    assert balance_summary(member=member) == {
        "balance": 100,
        "pending": 0,
        "held": 60,
        "available": 40,
    }
    with pytest.raises(errors.InsufficientPoints):
        services.points_redeem(member=member, points=41)
    entry = services.hold_post(hold=hold)
    assert (entry.kind, entry.amount, entry.reference) == (Entry.Kind.REDEEM, -60, "r1")
    assert hold.status == Hold.Status.POSTED and hold.entry == entry
    with pytest.raises(errors.HoldNotOpen) as exc:
        services.hold_void(hold=hold)
    assert exc.value.code == "hold_not_open"
    second = services.hold_place(member=member, points=40)
    services.hold_void(hold=second)
    assert second.status == Hold.Status.VOIDED
    assert balance_summary(member=member) == {
        "balance": 40,
        "pending": 0,
        "held": 0,
        "available": 40,
    }
    third = services.hold_place(member=member, points=10, expires_at=T0)
    assert services.holds_expire() == 1
    third.refresh_from_db()
    assert third.status == Hold.Status.EXPIRED
    assert services.holds_expire() == 0
    assert balance_summary(member=member)["held"] == 0
    assert_reconciled()
