"""Every write of the rewards app, one module per concept.

`redemptions` (redeem, reserve, confirm, cancel, expire: through ledger holds; its docstring
has the lock order every module keeps), `catalogue` (cost, availability, stock; saving a
reward), `vouchers` (hand-out, generation, import, expiry), `payments` (points as a discount
on a purchase), `fulfilment` (shipping).
"""

from rewards.services.catalogue import COUNTING_STATUSES, reward_cost, reward_save
from rewards.services.fulfilment import FULFILMENT_NEXT, fulfilment_set, redemptions_scrub
from rewards.services.payments import Discount, points_pay, points_value
from rewards.services.redemptions import (
    redemption_cancel,
    redemption_confirm,
    redemption_redeem,
    redemption_reserve,
    reservations_expire,
)
from rewards.services.vouchers import (
    voucher_codes_discard,
    voucher_codes_expire,
    voucher_codes_generate,
    voucher_codes_import,
    voucher_use,
)

__all__ = [
    "COUNTING_STATUSES",
    "FULFILMENT_NEXT",
    "Discount",
    "fulfilment_set",
    "points_pay",
    "points_value",
    "redemption_cancel",
    "redemption_confirm",
    "redemption_redeem",
    "redemption_reserve",
    "redemptions_scrub",
    "reservations_expire",
    "reward_cost",
    "reward_save",
    "voucher_codes_discard",
    "voucher_codes_expire",
    "voucher_codes_generate",
    "voucher_codes_import",
    "voucher_use",
]
