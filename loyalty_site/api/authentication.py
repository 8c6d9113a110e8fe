"""`Authorization: Api-Key <key>`: a channel's key, checked against its stored hash."""

import hashlib

from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from loyalty_site.models import Channel, ChannelAPIKey
from members import config_cache

KEYWORD = "Api-Key"


class ChannelPrincipal:
    """What `request.user` is for a channel: not a Django user, but authenticated."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False

    def __init__(self, channel: Channel):
        self.channel = channel
        self.pk = None

    def __str__(self) -> str:
        return self.channel.name


class ChannelKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        header = authentication.get_authorization_header(request)
        if not header:
            return None
        try:
            scheme, _sep, key = header.decode("latin-1").partition(" ")
        except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
            return None
        if scheme.lower() != KEYWORD.lower():
            return None
        key = key.strip()
        prefix, dot, _secret = key.partition(".")
        if not dot:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        # A key that checked out is kept for LOYALTY_CONFIG_CACHE_SECONDS (no query, no hash):
        # revoking it, or deactivating its channel, takes effect within that many seconds.
        name = "api-key:" + hashlib.sha256(key.encode()).hexdigest()
        api_key = config_cache.get(name)
        if api_key is None:
            api_key = self._checked_key(prefix, key)
            config_cache.put(name, api_key)
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        return ChannelPrincipal(api_key.channel), api_key

    @staticmethod
    def _checked_key(prefix: str, key: str) -> ChannelAPIKey:
        # One query: the key row with its channel. Revoked keys and inactive channels fail.
        api_key = (
            ChannelAPIKey.objects.select_related("channel")
            .filter(prefix=prefix, revoked=False, channel__active=True)
            .first()
        )
        if api_key is None or api_key.has_expired or not api_key.is_valid(key):
            raise exceptions.AuthenticationFailed(_("Invalid API key."))
        return api_key

    def authenticate_header(self, request) -> str:
        # A WWW-Authenticate value makes DRF answer 401 (not 403) to a request without a key.
        return KEYWORD


class ChannelKeyScheme(OpenApiAuthenticationExtension):
    target_class = "loyalty_site.api.authentication.ChannelKeyAuthentication"
    name = "ChannelKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'The channel\'s key, as "Api-Key <key>".',
        }
