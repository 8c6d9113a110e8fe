"""Request rate per channel: the channel's own rate, else LOYALTY_API_RATE.

The counters live in Django's cache; with the default per-process cache each web process counts
on its own, so N processes allow up to N times the rate.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


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
        return super().allow_request(request, view)
