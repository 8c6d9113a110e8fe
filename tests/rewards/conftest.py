import pytest

from ledger import services as ledger_services
from tests.factories import MemberFactory


@pytest.fixture
def member_with(db):
    """member_with(500) is a member holding 500 spendable points."""

    def make(points: int = 0, **kwargs):
        member = MemberFactory(**kwargs)
        if points:
            ledger_services.points_earn(member=member, points=points, reason="test")
        return member

    return make
