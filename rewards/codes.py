"""Voucher code generation: unguessable and easy to read out at a till.

The alphabet leaves out 0/O, 1/I/L so a code read aloud or typed from a receipt cannot be
mistaken. Twelve characters from 31 give about 59 bits: guessing one of a million issued codes
still takes ~10^12 tries, far beyond what the API's throttling allows.
"""

import secrets

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
GROUPS = 3
GROUP_SIZE = 4


def generate() -> str:
    """A fresh random code such as ``ABCD-EFGH-JKMN``."""
    return "-".join(
        "".join(secrets.choice(ALPHABET) for _ in range(GROUP_SIZE)) for _ in range(GROUPS)
    )


def normalise(code: str) -> str:
    """How a code is stored and looked up: trimmed and upper-case (tills often send lower-case)."""
    return code.strip().upper()
