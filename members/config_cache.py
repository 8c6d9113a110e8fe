"""Short-lived, per-process copies of read-mostly programme configuration.

An earn reads the same few rows on every request (earning rules, abuse rules, tiers, active
challenges, the channel key); keeping them for LOYALTY_CONFIG_CACHE_SECONDS saves a query each.
The price is a delay: an edit in the admin (a new rule, a revoked key, a paused challenge) takes
effect in every web process within that many seconds, not at once. 0 turns the cache off (the
test suite does, so that a test sees its own rows at once). Values are shared between requests:
callers must not change them (copy first).

The one per-process cache of the project: the webhook subscriptions are kept here too, for
LOYALTY_WEBHOOK_CACHE_SECONDS. It keeps the objects themselves, not pickled copies (as Django's
local-memory cache would): the earn path memoises each rule's engine spec on the kept instance.
"""

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")

_entries: dict[str, tuple[float, object]] = {}


def _ttl(ttl: int | None) -> int:
    return settings.LOYALTY_CONFIG_CACHE_SECONDS if ttl is None else ttl


def get(name: str, *, ttl: int | None = None):
    """The kept value, or None when there is none or it is older than ``ttl`` seconds
    (default LOYALTY_CONFIG_CACHE_SECONDS)."""
    ttl = _ttl(ttl)
    hit = _entries.get(name)
    if not ttl or hit is None or time.monotonic() - hit[0] >= ttl:
        return None
    return hit[1]


def put(name: str, value, *, ttl: int | None = None) -> None:
    if _ttl(ttl):
        _entries[name] = (time.monotonic(), value)


def cached(name: str, load: Callable[[], T], *, ttl: int | None = None) -> T:
    value = get(name, ttl=ttl)
    if value is None:
        value = load()
        put(name, value, ttl=ttl)
    return value


def forget(name: str) -> None:
    _entries.pop(name, None)


def clear() -> None:
    _entries.clear()
