"""The admin actions' loop: one service call per selected row, each refusal reported."""

import pytest
from django.contrib import messages

from loyalty_site.errors import Conflict, DomainError
from members.admin_actions import rows_run


class _Admin:
    def __init__(self):
        self.sent = []

    def message_user(self, request, message, level):
        self.sent.append((level, str(message)))


def test_rows_run_reports_each_refusal_by_row_and_counts_the_rest():
    def service(row):
        if row % 2:
            raise Conflict(f"odd {row}")

    admin = _Admin()
    done = rows_run(
        admin, None, [1, 2, 3, 4], service, done=lambda n: f"{n} done", label=lambda r: f"#{r}"
    )
    assert done == 2
    assert admin.sent == [
        (messages.ERROR, "#1: odd 1"),
        (messages.ERROR, "#3: odd 3"),
        (messages.SUCCESS, "2 done"),
    ]


def test_rows_run_says_nothing_of_success_when_every_row_is_refused():
    def service(row):
        raise DomainError(code="nope")

    admin = _Admin()
    assert rows_run(admin, None, ["a"], service, done=lambda n: f"{n} done") == 0
    assert admin.sent == [(messages.ERROR, "a: The request could not be carried out.")]


def test_rows_run_lets_anything_but_a_refusal_through():
    def service(row):
        raise ValueError("a bug, not a refusal")

    admin = _Admin()
    with pytest.raises(ValueError, match="a bug, not a refusal"):
        rows_run(admin, None, [1], service, done=str)
    assert admin.sent == []
