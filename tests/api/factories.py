"""Helpers for the API tests: members with points, made through the services."""

import itertools

from ledger import services as ledger_services
from members import services as member_services

_numbers = itertools.count(1)


def member_with(*, points: int = 0, **kwargs):
    n = next(_numbers)
    member = member_services.member_enrol(
        email=kwargs.pop("email", f"api{n}@example.nl"),
        first_name=kwargs.pop("first_name", "Anna"),
        last_name=kwargs.pop("last_name", f"Member {n}"),
        **kwargs,
    )
    if points:
        ledger_services.points_earn(member=member, points=points, reason="test")
    return member
