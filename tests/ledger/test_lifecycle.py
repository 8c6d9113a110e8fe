from datetime import UTC, datetime, timedelta

import pytest

from ledger import services
from ledger.models import Entry, Lot, PendingEarn
from ledger.selectors import balance_summary
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_pending_points_and_cancel(assert_reconciled):
    member = MemberFactory()
    now = datetime.now(UTC)
    pending = services.points_earn(member=member, points=30, pending_until=now + timedelta(days=14))
    assert isinstance(pending, PendingEarn)
    assert balance_summary(member=member) == {
        "balance": 0,
        "pending": 30,
        "held": 0,
        "available": 0,
    }
    left = services.pending_cancel(pending=pending, points=10)
    assert (left.points, left.status) == (20, PendingEarn.Status.PENDING)
    assert balance_summary(member=member)["pending"] == 20
    assert services.points_mature(now=now) == 0
    assert services.points_mature(now=now + timedelta(days=15)) == 1
    assert balance_summary(member=member) == {
        "balance": 20,
        "pending": 0,
        "held": 0,
        "available": 20,
    }
    pending.refresh_from_db()
    assert pending.status == PendingEarn.Status.MATURED
    assert (pending.entry.kind, pending.entry.amount) == (Entry.Kind.EARN, 20)
    assert_reconciled()


def test_expiry_fifo_partial_lots(settings, assert_reconciled):
    settings.LOYALTY_EXPIRY_POLICY = "rolling"
    settings.LOYALTY_EXPIRY_MONTHS = 12
    member = MemberFactory()
    services.points_earn(member=member, points=100, at=T0)  # expires 2027-01-10
    services.points_earn(member=member, points=50, at=T0 + timedelta(days=60))  # 2027-03-11
    services.points_redeem(member=member, points=70)  # takes 70 of the oldest lot
    assert services.points_expire(now=datetime(2027, 1, 11, tzinfo=UTC)) == 30
    assert balance_summary(member=member)["balance"] == 50
    assert services.points_expire(now=datetime(2027, 1, 11, tzinfo=UTC)) == 0
    expire = Entry.objects.get(kind=Entry.Kind.EXPIRE)
    assert expire.amount == -30
    oldest = Lot.objects.order_by("earned_at").first()
    assert (oldest.remaining, oldest.expired_at) == (0, expire.created_at)
    assert services.points_expire(now=datetime(2027, 3, 12, tzinfo=UTC)) == 50
    assert balance_summary(member=member)["balance"] == 0
    assert_reconciled()


def test_expiry_spares_held_points(settings, assert_reconciled):
    member = MemberFactory()
    services.points_earn(member=member, points=100, expires_at=T0 + timedelta(days=1), at=T0)
    hold = services.hold_place(member=member, points=40)
    assert services.points_expire() == 60
    assert balance_summary(member=member) == {
        "balance": 40,
        "pending": 0,
        "held": 40,
        "available": 0,
    }
    services.hold_void(hold=hold)
    assert services.points_expire() == 40
    assert balance_summary(member=member)["balance"] == 0
    assert_reconciled()
