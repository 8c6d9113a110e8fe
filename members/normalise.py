"""Canonical forms of what members type: one e-mail and one phone spelling per person."""

from datetime import date

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext

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


BIRTH_DATE_MAX_AGE_YEARS = 120


def birth_date_earliest(today: date) -> date:
    try:
        return today.replace(year=today.year - BIRTH_DATE_MAX_AGE_YEARS)
    except ValueError:  # 29 February, in a year that has none
        return today.replace(year=today.year - BIRTH_DATE_MAX_AGE_YEARS, day=28)


def birth_date_refusal(value: date | None, *, today: date) -> str:
    """Why a birth date cannot be a living member's ("" when it can, or is not given).

    Checked where dates enter (the member form, the import): a typo such as 0199 or 2099 would
    otherwise give birthday points on the wrong day or none at all.
    """
    earliest = birth_date_earliest(today)
    if value is None or earliest <= value <= today:
        return ""
    return gettext("Enter a birth date between %(earliest)s and today.") % {
        "earliest": earliest.isoformat()
    }
