"""The members app's refusals (codes are stable: the API and forms show them)."""

from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import Conflict, DomainError, NotFound


class EmailTaken(Conflict):
    code = "email_taken"
    default_detail = _("A member with this e-mail address is already enrolled.")


class PhoneTaken(Conflict):
    code = "phone_taken"
    default_detail = _("A member with this phone number is already enrolled.")


class ExternalIdTaken(Conflict):
    code = "external_id_taken"
    default_detail = _("A member with this external customer number exists already.")


class InvalidEmail(DomainError):
    code = "invalid_email"
    default_detail = _("Enter a valid e-mail address.")


class InvalidPhone(DomainError):
    code = "invalid_phone"
    default_detail = _("Enter a valid phone number, e.g. +31 6 12345678.")


class MemberNotFound(NotFound):
    code = "member_not_found"
    default_detail = _("No member with this id or card.")


class CardNotFound(NotFound):
    code = "card_not_found"
    default_detail = _("No card with this number.")


class CardBlocked(Conflict):
    code = "card_blocked"
    default_detail = _("This card is blocked or has been replaced.")


class CardNotActive(Conflict):
    code = "card_not_active"
    default_detail = _("Only an active card can be blocked or replaced.")


class MemberErased(Conflict):
    code = "member_erased"
    default_detail = _("This member's personal data has been erased.")


class ReasonRequired(DomainError):
    code = "reason_required"
    default_detail = _("Give a reason.")
