"""Canonical forms of what members type: one e-mail and one phone spelling per person."""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from members.errors import InvalidEmail, InvalidPhone


def email_normalise(raw: str) -> str:
    """Lower-cased and stripped. The whole address is lower-cased: mail providers treat the
    local part case-insensitively in practice and members type it both ways."""
    email = (raw or "").strip().lower()
    if not email:
        return ""
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidEmail(fields={"email": InvalidEmail.default_detail}) from None
    return email


def phone_normalise(raw: str) -> str:
    """E.164 (``+31612345678``); numbers without a country code are read in
    LOYALTY_PHONE_REGION."""
    raw = str(raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, settings.LOYALTY_PHONE_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(fields={"phone": InvalidPhone.default_detail}) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(fields={"phone": InvalidPhone.default_detail})
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
