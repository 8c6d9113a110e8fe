from datetime import UTC, datetime, timedelta

import pytest

from ledger import services
from ledger.selectors import points_expiring_soon
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_points_expiring_soon():
    member, other = MemberFactory(), MemberFactory()
    now = datetime.now(UTC)
    soon, later = now + timedelta(days=5), now + timedelta(days=20)
    services.points_earn(member=member, points=10, expires_at=soon)
    services.points_earn(member=member, points=20, expires_at=later)
    services.points_earn(member=other, points=7, expires_at=now + timedelta(days=100))
    rows = list(points_expiring_soon(days=30, now=now))
    assert rows == [{"member_id": member.pk, "points": 30, "first_expiry": soon}]
    assert list(points_expiring_soon(days=7, member=member, now=now)) == [
        {"member_id": member.pk, "points": 10, "first_expiry": soon}
    ]
    assert list(points_expiring_soon(days=7, member=other, now=now)) == []
