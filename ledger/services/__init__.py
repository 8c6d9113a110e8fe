"""Every change to points and to the records that move them, one module per concept.

``posting`` holds the lock order and the lot rules that every other module posts through; this
package exports the services that callers outside it use.
"""

from ledger.services.adjustments import adjustment_approve, adjustment_reject, points_adjust
from ledger.services.holds import hold_place, hold_post, hold_void, holds_expire
from ledger.services.idempotency import (
    idempotency_claim,
    idempotency_purge,
    idempotency_scrub,
    idempotency_store,
)
from ledger.services.lifecycle import pending_cancel, points_expire, points_mature
from ledger.services.points import (
    points_earn,
    points_earn_batch,
    points_redeem,
    points_reverse,
    points_transfer,
)
from ledger.services.purchases import purchase_store_first, return_store

__all__ = [
    "adjustment_approve",
    "adjustment_reject",
    "hold_place",
    "hold_post",
    "hold_void",
    "holds_expire",
    "idempotency_claim",
    "idempotency_purge",
    "idempotency_scrub",
    "idempotency_store",
    "pending_cancel",
    "points_adjust",
    "points_earn",
    "points_earn_batch",
    "points_expire",
    "points_mature",
    "points_redeem",
    "points_reverse",
    "points_transfer",
    "purchase_store_first",
    "return_store",
]
