"""Request rate per channel: the channel's own rate, else LOYALTY_API_RATE.

The counters live in Django's cache: shared by every web process when CACHE_URL names Redis;
with the default per-process cache each process counts on its own, so N processes allow up to N
times the rate.
"""

import logging

from django.conf import settings
from redis.exceptions import RedisError
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class ChannelRateThrottle(SimpleRateThrottle):
    scope = "channel"

    def __init__(self):
        # The rate depends on the channel, known only once the request is authenticated.
        self.rate = None

    def get_cache_key(self, request, view):
        channel = getattr(request.user, "channel", None)
        if channel is None:
            return None
        return f"throttle_channel_{channel.pk}"

    def allow_request(self, request, view):
        channel = getattr(request.user, "channel", None)
        if channel is None:
            return True
        self.rate = channel.rate or settings.LOYALTY_API_RATE
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except (RedisError, OSError) as exc:
            # Earning and spending go on while the counters cannot be reached: a rate limit
            # protects the service, it is not worth refusing a till's purchase for.
            logger.warning("rate counters unavailable", extra={"error": str(exc)})
            return True
