"""Card numbers: a fixed programme prefix, random digits and a Luhn check digit."""

import re
import secrets

PREFIX = "2790"  # in-store range of GS1 prefixes, never a real bank card
LENGTH = 16


def normalise(number: str | None) -> str:
    """A number as printed or typed ("2790 1234 5678 9012", "2790-1234-...") as it is stored."""
    return re.sub(r"[\s-]", "", number or "")


def luhn_check_digit(payload: str) -> str:
    total = 0
    # Walking from the right, every second digit (starting with the one next to the check
    # digit) is doubled.
    for index, char in enumerate(reversed(payload)):
        digit = int(char)
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def is_valid(number: str) -> bool:
    return (
        len(number) == LENGTH and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]
    )


def generate() -> str:
    body_length = LENGTH - len(PREFIX) - 1
    payload = PREFIX + "".join(secrets.choice("0123456789") for _ in range(body_length))
    return payload + luhn_check_digit(payload)
