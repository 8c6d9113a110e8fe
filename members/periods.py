"""Whether a tier change may be dated at a moment: a hook that a higher app fills in.

Finance's liability by tier reads each member's tier at a date from the tier history, so a
tier change dated in a month finance has closed would change a closed report. The period close
lives in ``ledger`` and ``members`` imports no other app (DESIGN §2), so ``ledger`` registers
its check here when it starts (``ledger.apps``). Without one (``members`` alone) every date
stands.

A check takes the moment asked for and returns the moment to record and a note ({} when it
stands), or raises a domain error (``period_closed``) to refuse it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

DatedCheck = Callable[[datetime], tuple[datetime, dict]]

_check: DatedCheck | None = None


def tier_change_dating_register(check: DatedCheck | None) -> None:
    global _check
    _check = check


def tier_change_dated(at: datetime) -> tuple[datetime, dict]:
    """The moment to date a tier change asked for ``at``, and the note ({} when none)."""
    if _check is None:
        return at, {}
    return _check(at)
