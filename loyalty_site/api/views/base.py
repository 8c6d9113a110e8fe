"""What every channel view shares: the viewset base, and the lookups of a member or an object
that a key may reach."""

import unicodedata
import uuid

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, viewsets
from rest_framework.decorators import (
    api_view,
    authentication_classes,
    permission_classes,
    throttle_classes,
)

from ledger.models import Purchase
from loyalty_site.channels import partner_reaches
from loyalty_site.errors import DomainError, NotFound
from loyalty_site.models import Channel
from members.errors import MemberNotFound
from members.models import Member
from rewards.models import Redemption


class InvalidPathParameter(DomainError):
    code = "invalid_path_parameter"
    status = 400
    default_detail = _("A path parameter contains a control character.")


def path_parameters_check(kwargs: dict) -> None:
    """Refuse a path parameter with a control character (NUL, a line break, DEL, C1): no id,
    card number or code has one, and a NUL cannot even be sent to PostgreSQL."""
    bad = {
        name: [InvalidPathParameter.default_detail]
        for name, value in kwargs.items()
        if isinstance(value, str) and any(unicodedata.category(ch) == "Cc" for ch in value)
    }
    if bad:
        raise InvalidPathParameter(fields=bad)


class ChannelViewSet(viewsets.GenericViewSet):
    # The scope each action needs; an action missing here is refused (ChannelScope).
    required_scopes: dict[str, str] = {}
    pagination_class = None
    filter_backends = []
    # No OPTIONS introspection: the OpenAPI schema is the description, OPTIONS answers 405.
    metadata_class = None
    # Set per action (the ledger's filters); as_view() only accepts attributes the class has.
    filterset_class = None
    # Any id up to the next `/` reaches the view (the router's default stops at a `.`), so
    # that a malformed id gets the resource's own 404 code (`member_not_found`, ...).
    lookup_value_regex = r"[^/]+"

    def initial(self, request, *args, **kwargs):
        # After the key and scope checks: a caller without a key learns nothing from a 400.
        super().initial(request, *args, **kwargs)
        path_parameters_check(kwargs)


def member_public_id(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise MemberNotFound() from None


def member_get(value, *, channel: Channel, queryset: QuerySet | None = None, lookup=None) -> Member:
    """The member with this public id that `channel` may reach, unless erased (an erased member
    is gone for channels): from `queryset`, or from `lookup(public_id=...)`, which finds no
    erased member either (answers.member_answer_member)."""
    public_id = member_public_id(value)
    if lookup is not None:
        member = lookup(public_id=public_id)
    else:
        queryset = queryset if queryset is not None else Member.objects.all()
        member = queryset.filter(public_id=public_id).exclude(status=Member.Status.ERASED).first()
    if member is None:
        raise MemberNotFound()
    member_reach(member, channel=channel)
    return member


def member_reach(member: Member, *, channel: Channel) -> Member:
    """`member` if `channel` may reach it; else 404 `member_not_found`, the answer for a member
    that does not exist, so that a partner key cannot tell which members the programme has."""
    if not partner_reaches(channel=channel, member=member):
        raise MemberNotFound()
    return member


def purchases_visible(channel: Channel) -> QuerySet[Purchase]:
    """What a key may see of purchases: partners their own, store keys their stores'."""
    purchases = Purchase.objects.select_related("member")
    if channel.kind == Channel.Kind.PARTNER:
        purchases = purchases.filter(channel=channel.name)
    if channel.stores:
        purchases = purchases.filter(store__in=channel.stores)
    return purchases


def redemptions_visible(channel: Channel) -> QuerySet[Redemption]:
    """Partners and store-bound keys act on their own redemptions only (a redemption has no
    store, so its channel is the only sure link to the store that made it)."""
    redemptions = Redemption.objects.select_related("member")
    if channel.kind == Channel.Kind.PARTNER or channel.stores:
        redemptions = redemptions.filter(channel=channel.name)
    return redemptions


def object_get(queryset: QuerySet, pk, *, code: str):
    """The object with this id in `queryset` (what the key may reach), else 404 `code`."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound(code=code) from None
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise NotFound(code=code)
    return found


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def not_found(request, path=""):
    """Every other path under /api/: a JSON 404 like the rest of the API, not an HTML page."""
    raise exceptions.NotFound()
