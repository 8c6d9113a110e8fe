"""Which catalogue code (``ledger.reasons``) an old English or Dutch reason text stood for.

Before codes, the system wrote its reasons as text in the language active at the time: English
from jobs and most channels, Dutch from a request with ``Accept-Language: nl``. Both are
recognised. A text not recognised here stays in ``reason`` unchanged (staff's own words, or a
wording this mapping does not know); the entry then shows it as it always did.
"""

import re

_PATTERNS = [
    # (code, pattern on the text, the reference the writer set, parameter name of the group)
    ("purchase", re.compile(r"^(?:Purchase|Aankoop) (.+)$"), "purchase:", "id"),
    (
        "purchase_return",
        re.compile(r"^(?:Return of purchase|Retour van aankoop) (.+)$"),
        "purchase:",
        "id",
    ),
    (
        "challenge_completed",
        re.compile(r"^(?:Challenge completed|Uitdaging voltooid): (.+)$"),
        "challenge:",
        "name",
    ),
]


def reason_code_for(*, kind: str, reason: str, reference: str) -> tuple[str, dict] | None:
    """(code, params) for an old system reason, or None to keep the text as it is."""
    text = (reason or "").strip()
    if not text or kind == "adjust":
        return None  # an adjustment's reason is always what staff typed
    if kind == "expire" and text == "expiry":
        return "points_expired", {}
    if kind == "redeem" and text in {"Redemption", "Inwisseling"}:
        return "redemption", {}
    for code, pattern, prefix, param in _PATTERNS:
        match = pattern.match(text)
        if match and reference.startswith(prefix):
            return code, {param: match.group(1)}
    if kind == "earn" and reference.startswith("event:"):
        # An engagement event's entry carried its kind's name. Which kind is not recorded on
        # the entry (only campaigns knows), so only the referral kind, named by the code, is told.
        if text in {"Referral", "Verwijzing"}:
            return "referral", {}
        return "engagement", {"name": text}
    return None
