"""Channel keys: create a channel with its first key, replace a key, revoke keys.

Keys are stored hashed (djangorestframework-api-key); the plain key exists only in the return
value of the service that made it, to be shown once. Revocations are logged with who did them.
"""

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import Conflict, DomainError
from loyalty_site.models import SCOPES, Channel, ChannelAPIKey, PartnerLink
from loyalty_site.rates import rate_validate

logger = logging.getLogger(__name__)


class UnknownScopes(DomainError):
    code = "unknown_scopes"
    default_detail = _("Unknown scopes.")


def channel_names() -> list[str]:
    """Every channel's name, revoked ones too (their entries stay): the ledger page's filter."""
    return list(Channel.objects.order_by("name").values_list("name", flat=True))


@transaction.atomic
def channel_create(
    *, name: str, kind: str, scopes: list[str], stores: list[str] = (), rate: str = ""
) -> tuple[Channel, str]:
    """A new channel and its first key; returns the channel and the plain key (shown once)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise UnknownScopes(_("Unknown scopes: %(scopes)s") % {"scopes": ", ".join(unknown)})
    try:
        rate_validate(rate)
    except ValidationError as error:
        raise DomainError(error.messages[0], code="invalid_rate") from None
    if Channel.objects.filter(name=name).exists():
        raise Conflict(
            _("Channel %(name)s exists; replace its key instead.") % {"name": name},
            code="channel_exists",
        )
    channel = Channel.objects.create(
        name=name, kind=kind, scopes=list(scopes), stores=list(stores), rate=rate
    )
    _api_key, key = ChannelAPIKey.objects.create_key(name=name[:50], channel=channel)
    logger.info("channel created", extra={"channel": name, "kind": kind})
    return channel, key


@transaction.atomic
def channel_key_replace(*, channel: Channel, actor=None) -> tuple[int, str]:
    """Revoke the channel's keys and issue a new one; returns (keys revoked, plain new key)."""
    revoked = channel_keys_revoke(channels=[channel], actor=actor)
    _api_key, key = ChannelAPIKey.objects.create_key(name=channel.name[:50], channel=channel)
    return revoked, key


@transaction.atomic
def channel_keys_revoke(*, channels, actor=None) -> int:
    """Revoke every live key of these channels. Web processes may honour a cached key for up to
    LOYALTY_CONFIG_CACHE_SECONDS after this."""
    count = ChannelAPIKey.objects.filter(channel__in=channels, revoked=False).update(revoked=True)
    logger.warning(
        "channel keys revoked",
        extra={
            "channels": [channel.name for channel in channels],
            "keys": count,
            "actor": getattr(actor, "username", "") or "command line",
        },
    )
    return count


def partner_link(*, channel: Channel, member) -> None:
    """Link `member` to a partner channel: they presented their card to it. A no-op for a
    first-party channel or a member already linked. Called in the caller's transaction, after its
    service succeeded, so a refused purchase or enrolment links nobody."""
    if channel.kind != Channel.Kind.PARTNER:
        return
    # ignore_conflicts: two concurrent purchases of one member at one partner both link, once.
    PartnerLink.objects.bulk_create(
        [PartnerLink(channel=channel, member=member)], ignore_conflicts=True
    )


def partner_reaches(*, channel: Channel, member) -> bool:
    """Whether a key of `channel` may see or act on `member`: first-party channels every member,
    a partner only the members linked to it."""
    if channel.kind != Channel.Kind.PARTNER:
        return True
    return PartnerLink.objects.filter(channel=channel, member=member).exists()
