"""The ledger's data: points accounts, entries, lots, holds, pending points, adjustment requests
and idempotency records (`points`); purchases and returns as records (`purchases`); what
finance's reports need beyond them (`finance`)."""

from ledger.models.finance import (
    LotConsumption,
    PendingCancellation,
    PeriodClose,
    PointValue,
    ReconciliationRun,
    RedemptionEstimate,
)
from ledger.models.points import (
    Account,
    AdjustmentRequest,
    Entry,
    Hold,
    IdempotencyRecord,
    Lot,
    PendingEarn,
)
from ledger.models.purchases import Purchase, PurchaseLine, Return, ReturnLine

__all__ = [
    "Account",
    "AdjustmentRequest",
    "Entry",
    "Hold",
    "IdempotencyRecord",
    "Lot",
    "LotConsumption",
    "PendingCancellation",
    "PendingEarn",
    "PeriodClose",
    "PointValue",
    "Purchase",
    "PurchaseLine",
    "ReconciliationRun",
    "RedemptionEstimate",
    "Return",
    "ReturnLine",
]
