"""Admin actions that run a service for each selected row, for every app's admin.

It lives in members, the lowest app, so that the admin of every app (and loyalty_site's) may
import it without an upward dependency.
"""

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib import messages

from loyalty_site.errors import DomainError
from members.busy import busy_retry


def rows_run(
    modeladmin,
    request,
    rows: Iterable,
    action: Callable[[Any], object],
    *,
    done: Callable[[int], str],
    label: Callable[[Any], str] = str,
) -> int:
    """An admin action's loop: ``action(row)`` (one service call) for each selected row.

    Each call is its own transaction, so a refused row leaves the others done: every refusal is
    an error message naming its row (``label``), and one success message ``done(count)`` counts
    the rows done. Returns that count. A call the database rolls back as a deadlock's victim is
    run again (``members.busy``); one that loses every time is refused as ``busy``, "try again".
    """
    count = 0
    for row in rows:
        try:
            busy_retry(lambda row=row: action(row))
        except DomainError as error:
            modeladmin.message_user(request, f"{label(row)}: {error.detail}", messages.ERROR)
        else:
            count += 1
    if count:
        modeladmin.message_user(request, done(count), messages.SUCCESS)
    return count
