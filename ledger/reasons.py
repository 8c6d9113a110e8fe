"""Why points moved: the one catalogue of reasons the system writes, shown in the reader's language.

An entry written by the system (a purchase, a return, an expiry, a redemption, an engagement
event, a challenge) stores a stable ``reason_code`` and its ``reason_params`` (JSON), never a
sentence: a sentence would be frozen in the language of whoever happened to trigger the write
(a Dutch till, an English nightly job). ``reason`` keeps only what a staff member typed (an
adjustment, a transfer). ``reason_render`` turns the three into the text for the active
language, at read time: the admin, the API ledger (Accept-Language) and the data export.

The templates are marked with ``gettext_noop`` and translated when rendered rather than held as
lazy strings: rendering then falls back to the English template when a translation lacks a
placeholder, instead of failing the page. Codes are part of the API (``reason_code``): add new
ones, never rename or remove one; the other apps use these codes (ledger imports none of them).
"""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_noop as _

# code -> (template, the parameters it needs)
REASONS: dict[str, tuple[str, frozenset[str]]] = {
    "purchase": (_("Purchase %(id)s"), frozenset({"id"})),
    "purchase_return": (_("Return of purchase %(id)s"), frozenset({"id"})),
    "redemption": (_("Redemption"), frozenset()),
    "points_expired": (_("Points expired"), frozenset()),
    "challenge_completed": (_("Challenge completed: %(name)s"), frozenset({"name"})),
    # An engagement event: `name` is the event kind's name as marketing wrote it (data, not
    # translated), `kind` its code. Birthday and referral points have their own wording.
    "engagement": (_("Engagement: %(name)s"), frozenset({"name"})),
    "birthday": (_("Birthday points"), frozenset()),
    "referral": (_("Referral"), frozenset()),
}


def reason_check(code: str, params: dict | None) -> dict:
    """The params to store with ``code``; a code outside the catalogue or a missing parameter
    is a programming error, refused before anything is written."""
    params = dict(params or {})
    if not code:
        if params:
            raise ValueError("reason_params without a reason_code")
        return params
    if code not in REASONS:
        raise ValueError(f"unknown reason code {code!r}: add it to ledger.reasons.REASONS")
    missing = REASONS[code][1] - params.keys()
    if missing:
        raise ValueError(f"reason code {code!r} needs {sorted(missing)}")
    return params


def reason_render(*, code: str, params: dict | None, reason: str = "") -> str:
    """The reason in the active language: the code's template, then what staff typed, if any."""
    if not code:
        return reason
    if code not in REASONS:  # a code from a newer release, read by an older one
        return reason or code
    template, _needs = REASONS[code]
    params = params or {}
    try:
        text = gettext(template) % params
    except (KeyError, TypeError, ValueError):
        text = template % params
    return f"{text} ({reason})" if reason else text
