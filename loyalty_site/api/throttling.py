"""Request rate per channel: the channel's own rate, else LOYALTY_API_RATE.

One counter per channel and fixed window (a minute for "600/min"), incremented atomically in
Django's cache: constant work per request whatever the rate, and, when CACHE_URL names Redis, one
count for all web processes (an INCR). With the default per-process cache each process counts on
its own, so N processes allow up to N times the rate. As with any fixed window, a client may fit
up to twice the rate into the seconds around a window's end; Retry-After says when the next
window opens.
"""

import logging
import time

from django.conf import settings
from django.core.cache import cache
from redis.exceptions import RedisError
from rest_framework.throttling import BaseThrottle

from loyalty_site.rates import rate_parse

logger = logging.getLogger(__name__)


class ChannelRateThrottle(BaseThrottle):
    def __init__(self):
        self.wait_seconds = None

    def allow_request(self, request, view):
        channel = getattr(request.user, "channel", None)
        if channel is None:
            return True
        try:
            allowed, duration = rate_parse(channel.rate or settings.LOYALTY_API_RATE)
        except ValueError:
            # Stored before rates were checked: the default applies until someone fixes it.
            logger.warning("channel rate unreadable", extra={"channel": channel.name})
            allowed, duration = rate_parse(settings.LOYALTY_API_RATE)
        now = time.time()
        window = int(now // duration)
        key = f"throttle_channel_{channel.pk}_{duration}_{window}"
        try:
            try:
                count = cache.incr(key)  # atomic; one round trip once the window is open
            except ValueError:
                # The window's first request; add() loses to a concurrent first one.
                count = 1 if cache.add(key, 1, timeout=duration + 60) else cache.incr(key)
        except (RedisError, OSError) as exc:
            # Earning and spending go on while the counters cannot be reached: a rate limit
            # protects the service, it is not worth refusing a till's purchase for.
            logger.warning("rate counters unavailable", extra={"error": str(exc)})
            return True
        if count <= allowed:
            return True
        self.wait_seconds = (window + 1) * duration - now
        return False

    def wait(self):
        return self.wait_seconds
