"""Where a webhook may be sent: https (plain http only with DEBUG) to hosts on the public internet.

A subscription's URL is chosen by staff, and the worker posts to it from inside our network, so
an unchecked URL lets whoever edits subscriptions make the worker call the cloud metadata service
(169.254.169.254), the database or Redis on 127.0.0.1, or anything on a private range. The URL is
checked when a subscription is saved (`webhook_url_validate`, a model field validator) and again
before every delivery (`target_check`), because a name that resolved to a public address at save
time may resolve inside later. Every address a name resolves to must be public: a name with one
public and one private address could be connected to either.

The send connects to the very address that passed the check (`pinned_session`): the name is
resolved once, and the HTTP client does not resolve it again when it connects, so a DNS server
that answers a public address to the check and 127.0.0.1 a second later (DNS rebinding) gains
nothing. The URL's name still names the server: the Host header, TLS SNI and the certificate
check use it. Environment proxies are not used for webhooks (a proxy would resolve the name
itself). Egress filtering at the network edge remains the complete answer.

``LOYALTY_WEBHOOK_ALLOW_PRIVATE`` (default off) is for tests and local development only: it accepts
private and loopback targets and plain http, so that a receiver on 127.0.0.1 can be used. A deploy
check warns when it is on (`loyalty_site.checks`).
"""

import ipaddress
import socket
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool


class TargetRefused(Exception):
    """A webhook URL we will not post to. ``note`` is the short text stored on the delivery."""

    def __init__(self, code: str, *, host: str = "", address: str = ""):
        super().__init__(code)
        self.code, self.host, self.address = code, host, address

    @property
    def note(self) -> str:
        return {
            "scheme": "refused: scheme",
            "host": "refused: no host",
            "unresolved": "DNS lookup failed",
            "private": "refused: private address",
        }[self.code]

    @property
    def final(self) -> bool:
        # A lookup that failed may succeed on the next attempt; a refusal stays a refusal.
        return self.code != "unresolved"


MESSAGES = {
    "scheme": _("Webhook URLs must start with https://."),
    "host": _("Enter a URL with a host name."),
    "unresolved": _("The host %(host)s could not be found."),
    "private": _(
        "The host %(host)s is inside the network (%(address)s). Webhooks are sent only to "
        "public addresses."
    ),
}


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not (
        address.is_loopback
        or address.is_link_local
        or address.is_private
        or address.is_reserved
        or address.is_multicast
        or address.is_unspecified
    )


def _addresses(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    # sockaddr[0] of an IPv6 answer may carry a zone ("fe80::1%eth0").
    return [ipaddress.ip_address(sockaddr[0].split("%")[0]) for *_rest, sockaddr in answers]


def target_check(url: str) -> str:
    """Raise TargetRefused unless ``url`` may receive webhooks now (resolves its host).

    Returns the address to connect to: the first the name resolved to, every one of them checked.
    """
    allow_private = settings.LOYALTY_WEBHOOK_ALLOW_PRIVATE
    parts = urlsplit(url)
    schemes = {"https", "http"} if settings.DEBUG or allow_private else {"https"}
    if parts.scheme not in schemes:
        raise TargetRefused("scheme")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number
        raise TargetRefused("host") from None
    if not host:
        raise TargetRefused("host")
    addresses = _addresses(host, port or (443 if parts.scheme == "https" else 80))
    if not addresses:
        raise TargetRefused("unresolved", host=host)
    if not allow_private:
        for address in addresses:
            if not _is_public(address):
                raise TargetRefused("private", host=host, address=str(address))
    return str(addresses[0])


def _pinned(connection_cls: type, address: str) -> type:
    class Pinned(connection_cls):
        def _new_conn(self):
            # urllib3 opens the socket to ``_dns_host`` (and resolves it); everything else -- the
            # Host header, SNI, the certificate's name -- reads ``host``, which is the same
            # attribute. So it holds the checked address only while the socket is opened.
            name, self._dns_host = self._dns_host, address
            try:
                return super()._new_conn()
            finally:
                self._dns_host = name

    return Pinned


class _PinnedAdapter(HTTPAdapter):
    def __init__(self, address: str):
        self.address = address
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            scheme: type(
                f"Pinned{pool.__name__}",
                (pool,),
                {"ConnectionCls": _pinned(pool.ConnectionCls, self.address)},
            )
            for scheme, pool in ((("http", HTTPConnectionPool), ("https", HTTPSConnectionPool)))
        }


def pinned_session(address: str) -> requests.Session:
    """A session whose every connection goes to ``address`` (from `target_check`)."""
    session = requests.Session()
    session.trust_env = False  # no proxy from the environment: it would resolve the name again
    adapter = _PinnedAdapter(address)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def webhook_url_validate(url: str) -> None:
    """Model field validator: the subscription's URL must be a public https URL."""
    try:
        target_check(url)
    except TargetRefused as refused:
        raise ValidationError(
            MESSAGES[refused.code],
            code=f"webhook_url_{refused.code}",
            params={"host": refused.host, "address": refused.address},
        ) from None
