"""Short-lived, per-process copies of read-mostly programme configuration.

An earn reads the same few rows on every request (earning rules, abuse rules, tiers, active
challenges, the channel key); keeping them for LOYALTY_CONFIG_CACHE_SECONDS saves a query each.
The price is a delay: an edit in the admin (a new rule, a revoked key, a paused challenge) takes
effect in every web process within that many seconds, not at once. 0 turns the cache off (the
test suite does, so that a test sees its own rows at once). Values are shared between requests:
callers must not change them (copy first).
"""

import time
from collections.abc import Callable
from typing import TypeVar

from django.conf import settings

T = TypeVar("T")

_entries: dict[str, tuple[float, object]] = {}


def get(name: str):
    """The kept value, or None when there is none or it is older than the setting allows."""
    ttl = settings.LOYALTY_CONFIG_CACHE_SECONDS
    hit = _entries.get(name)
    if not ttl or hit is None or time.monotonic() - hit[0] >= ttl:
        return None
    return hit[1]


def put(name: str, value) -> None:
    if settings.LOYALTY_CONFIG_CACHE_SECONDS:
        _entries[name] = (time.monotonic(), value)


def cached(name: str, load: Callable[[], T]) -> T:
    value = get(name)
    if value is None:
        value = load()
        put(name, value)
    return value


def clear() -> None:
    _entries.clear()
