"""The ledger's refusals, each with a stable code that the API and forms show."""

from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import Conflict, DomainError

# Raised by the ledger too: one class per code, defined in the lowest app that raises it.
from members.errors import ReasonRequired as ReasonRequired


class InsufficientPoints(Conflict):
    code = "insufficient_points"
    default_detail = _("The member does not have enough points.")


class AccountInDebt(Conflict):
    code = "account_in_debt"
    default_detail = _("The account is in debt; it cannot redeem until it earns back.")


class MemberBlocked(Conflict):
    code = "member_blocked"
    default_detail = _("The member is blocked or erased and cannot spend points.")


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_detail = _("This idempotency key was already used for a different request.")


class IdempotencyInProgress(Conflict):
    code = "idempotency_in_progress"
    default_detail = _("A request with this idempotency key is still being processed.")


class HoldNotOpen(Conflict):
    code = "hold_not_open"
    default_detail = _("The hold is no longer open.")


class InvalidPoints(DomainError):
    code = "invalid_points"
    status = 422
    default_detail = _("The number of points must be a positive whole number.")


class SelfApproval(Conflict):
    code = "self_approval"
    default_detail = _("A second staff member must approve this adjustment; not the requester.")


class RequestNotPending(Conflict):
    code = "request_not_pending"
    default_detail = _("This adjustment request was already decided.")


class DuplicatePurchase(Conflict):
    code = "duplicate_purchase"
    default_detail = _("This purchase was recorded already.")


class InvalidCurrency(DomainError):
    code = "invalid_currency"
    status = 422
    default_detail = _("Currency must be a three-letter code.")


class ReturnExceedsPurchase(DomainError):
    code = "return_exceeds_purchase"
    status = 422
    default_detail = _("The return is larger than what is left of the purchase.")


class CurrencyNotSupported(DomainError):
    code = "currency_not_supported"
    status = 422
    default_detail = _("Only purchases in the programme's currency are accepted.")


class NothingToReturn(Conflict):
    code = "nothing_to_return"
    default_detail = _("Nothing of this purchase is left to return.")


class PurchaseTooLate(DomainError):
    code = "purchase_too_late"
    status = 422
    default_detail = _("The purchase is older than this channel may upload.")


class PeriodClosed(Conflict):
    code = "period_closed"
    default_detail = _("This date is in a closed finance period.")
