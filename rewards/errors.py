"""The rewards app's refusals (codes are part of the channel API's vocabulary)."""

from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import Conflict, DomainError, NotFound


class RewardUnavailable(Conflict):
    code = "reward_unavailable"
    default_detail = _("This reward is not available to this member here and now.")


class RewardNotOffered(Conflict):
    code = "reward_not_offered"
    default_detail = _("This reward is only for members a campaign offers it to.")


class OutOfStock(Conflict):
    code = "out_of_stock"
    default_detail = _("This reward is out of stock.")


class LimitReached(Conflict):
    code = "limit_reached"
    default_detail = _("The member has redeemed this reward as often as allowed.")


class VoucherPoolEmpty(Conflict):
    code = "voucher_pool_empty"
    default_detail = _("No voucher codes are left for this reward.")


class RedemptionConfirmed(Conflict):
    code = "redemption_confirmed"
    default_detail = _("A confirmed redemption cannot be cancelled.")


class RedemptionNotReserved(Conflict):
    code = "redemption_not_reserved"
    default_detail = _("Only a reserved redemption can be confirmed.")


class ReservationExpired(Conflict):
    code = "reservation_expired"
    default_detail = _("The reservation has expired; its points and stock were released.")


class VoucherNotFound(NotFound):
    code = "voucher_not_found"
    default_detail = _("No such voucher code.")


class VoucherNotUsable(Conflict):
    code = "voucher_not_usable"
    default_detail = _("This voucher code cannot be used.")


class FulfilmentTransition(Conflict):
    code = "fulfilment_transition"
    default_detail = _("This fulfilment status change is not allowed.")


class DiscountTooSmall(DomainError):
    code = "discount_too_small"
    status = 422
    default_detail = _("These points are worth less than the smallest coin.")
