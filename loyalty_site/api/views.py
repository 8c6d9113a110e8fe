"""The channel API's views: validate, call one service, render its result.

Every write runs in one transaction with the webhook events it causes (they are sent after
commit) and, when the request carries an `Idempotency-Key`, with its stored answer.
"""

import uuid

from django.db.models import Prefetch
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import (
    action,
    api_view,
    authentication_classes,
    permission_classes,
    throttle_classes,
)
from rest_framework.response import Response

from campaigns import services as campaign_services
from campaigns.models import EngagementEvent
from campaigns.tiers import tier_progress
from ledger import selectors as ledger_selectors
from ledger.models import Entry, Purchase
from loyalty_site.api import serializers as s
from loyalty_site.api.idempotency import HEADER, idempotent, write_atomic
from loyalty_site.api.pagination import LedgerCursorPagination
from loyalty_site.errors import NotFound
from loyalty_site.models import Channel
from loyalty_site.webhooks import event_emit
from members import selectors as member_selectors
from members import services as member_services
from members.models import Card, Member
from rewards import selectors as reward_selectors
from rewards import services as reward_services
from rewards.models import Redemption, Reward, VoucherCode

# --- OpenAPI documentation helpers ---

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=str(
        _(
            "Any unique string (e.g. a UUID). A retry with the same key and body gets the first "
            "answer and writes nothing; the same key with another body gets 409."
        )
    ),
)


def _errors(*statuses: int) -> dict:
    descriptions = {
        400: _("Invalid input (`code` invalid; `fields` names each problem)."),
        401: _("No or an invalid key (`not_authenticated`)."),
        403: _("The key lacks the scope or the store (`permission_denied`)."),
        404: _("Not found, or not visible to this key (`not_found` or a more specific code)."),
        409: _("Refused in the current state, or an idempotency clash."),
        422: _("Understood but refused by a business rule."),
        429: _("Too many requests (`throttled`); see Retry-After."),
    }
    return {
        code: OpenApiResponse(s.ErrorSerializer, description=str(descriptions[code]))
        for code in (401, 403, 429, *statuses)
    }


ERROR_EXAMPLE = OpenApiExample(
    "insufficient points",
    value={
        "code": "insufficient_points",
        "detail": "The member does not have enough points.",
        "fields": {},
    },
    response_only=True,
    status_codes=["409"],
)


# --- helpers ---


def _channel(request) -> Channel:
    return request.user.channel


def _member_queryset():
    return Member.objects.select_related("tier", "account").prefetch_related(
        Prefetch("cards", queryset=Card.objects.order_by("-issued_at", "-pk"))
    )


def _member_public_id(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(code="member_not_found") from None


def _member(value, *, queryset=None) -> Member:
    public_id = _member_public_id(value)
    queryset = queryset if queryset is not None else Member.objects.all()
    member = queryset.filter(public_id=public_id).exclude(status=Member.Status.ERASED).first()
    if member is None:
        raise NotFound(code="member_not_found")
    return member


def _member_data(member: Member) -> dict:
    try:
        account = member.account
        balance, pending, held = account.balance, account.pending, account.held
    except Member.account.RelatedObjectDoesNotExist:
        balance = pending = held = 0
    progress = tier_progress(member=member)
    return {
        "public_id": member.public_id,
        "email": member.email,
        "first_name": member.first_name,
        "last_name": member.last_name,
        "external_id": member.external_id,
        "status": member.status,
        "balance": balance,
        "available": balance - held,
        "pending_points": pending,
        "tier": progress["tier"],
        "points_to_next_tier": progress["points_to_next_tier"],
        "cards": [{"number": c.number, "status": c.status} for c in member.cards.all()],
    }


def _purchases_visible(channel: Channel):
    """What a key may see of purchases: partners their own, store keys their stores'."""
    purchases = Purchase.objects.select_related("member")
    if channel.kind == Channel.Kind.PARTNER:
        purchases = purchases.filter(channel=channel.name)
    if channel.stores:
        purchases = purchases.filter(store__in=channel.stores)
    return purchases


def _redemptions_visible(channel: Channel):
    """Partners and store-bound keys act on their own redemptions only (a redemption has no
    store, so its channel is the only sure link to the store that made it)."""
    redemptions = Redemption.objects.select_related("member")
    if channel.kind == Channel.Kind.PARTNER or channel.stores:
        redemptions = redemptions.filter(channel=channel.name)
    return redemptions


def _object(queryset, pk, *, code: str):
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound(code=code) from None
    found = queryset.filter(pk=pk).first()
    if found is None:
        raise NotFound(code=code)
    return found


def _redemption_data(redemption: Redemption) -> dict:
    code = VoucherCode.objects.filter(redemption=redemption).values_list("code", flat=True).first()
    summary = ledger_selectors.balance_summary(member=redemption.member)
    return {
        "id": redemption.pk,
        "member": redemption.member.public_id,
        "reward": redemption.reward_id,
        "status": redemption.status,
        "points": redemption.points,
        "code": code,
        "balance": summary["balance"],
        "available": summary["available"],
    }


class ChannelViewSet(viewsets.GenericViewSet):
    # The scope each action needs; an action missing here is refused (ChannelScope).
    required_scopes: dict[str, str] = {}
    pagination_class = None
    filter_backends = []
    # No OPTIONS introspection: the OpenAPI schema is the description, OPTIONS answers 405.
    metadata_class = None
    # Set per action (the ledger's filters); as_view() only accepts attributes the class has.
    filterset_class = None


# --- members and cards ---


class EntryFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Entry.Kind.choices)
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Entry
        fields = ["kind", "created_after", "created_before"]


MEMBER_EXAMPLE = {
    "id": "0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10",
    "email": "anna@example.nl",
    "first_name": "Anna",
    "last_name": "de Vries",
    "external_id": "",
    "status": "active",
    "balance": 120,
    "available": 120,
    "pending_points": 0,
    "tier": "Silver",
    "points_to_next_tier": 380,
    "cards": [{"number": "6280001234567890", "status": "active"}],
}


@extend_schema_view(
    retrieve=extend_schema(
        summary="A member's profile, balance and tier",
        responses={200: s.MemberSerializer, **_errors(404)},
        examples=[OpenApiExample("member", value=MEMBER_EXAMPLE, response_only=True)],
    ),
)
class MemberViewSet(ChannelViewSet):
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    queryset = Member.objects.none()
    serializer_class = s.MemberSerializer
    required_scopes = {
        "create": "members:write",
        "retrieve": "members:read",
        "rewards": "members:read",
    }

    @extend_schema(
        summary="Enrol a member",
        request=s.MemberEnrolSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: s.MemberEnrolledSerializer, **_errors(400, 404, 409, 422)},
        examples=[
            OpenApiExample(
                "enrol",
                value={
                    "email": "anna@example.nl",
                    "first_name": "Anna",
                    "last_name": "de Vries",
                    "consents": {"marketing_email": True},
                },
                request_only=True,
            ),
            OpenApiExample(
                "enrolled",
                value={**MEMBER_EXAMPLE, "card_number": "6280001234567890", "balance": 0},
                response_only=True,
                status_codes=["201"],
            ),
            OpenApiExample(
                "e-mail taken",
                value={"code": "email_taken", "detail": "A member with this e-mail…", "fields": {}},
                response_only=True,
                status_codes=["409"],
            ),
        ],
    )
    @idempotent
    def create(self, request):
        serializer = s.MemberEnrolSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = _channel(request)
        with write_atomic(request):
            member = member_services.member_enrol(
                email=data["email"],
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                phone=data.get("phone", ""),
                birth_date=data.get("birth_date"),
                external_id=data.get("external_id", ""),
                consents=[purpose for purpose, on in data.get("consents", {}).items() if on],
                channel=channel.name,
            )
            if data.get("referral_code"):
                campaign_services.referral_register(referred=member, code=data["referral_code"])
            member = _member_queryset().get(pk=member.pk)
            body = _member_data(member)
            body["card_number"] = body["cards"][0]["number"] if body["cards"] else None
            event_emit(
                event_type="member.enrolled",
                data={"member": member.public_id, "card_number": body["card_number"]},
                channel=channel.name,
            )
        return Response(s.MemberEnrolledSerializer(body).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, id=None):
        member = _member(id, queryset=_member_queryset())
        return Response(s.MemberSerializer(_member_data(member)).data)

    @extend_schema(
        summary="Rewards this member may see and afford in this channel",
        responses={200: s.RewardSerializer(many=True), **_errors(404)},
    )
    @action(detail=True, methods=["get"])
    def rewards(self, request, id=None):
        member = _member(id, queryset=Member.objects.select_related("tier"))
        rewards = reward_selectors.rewards_available(
            member=member, channel_kind=_channel(request).kind
        )
        data = [
            {
                "id": r.pk,
                "kind": r.kind,
                "name": r.name,
                "description": r.description,
                "points": r.cost,
            }
            for r in rewards
        ]
        return Response(s.RewardSerializer(data, many=True).data)


class LedgerViewSet(ChannelViewSet):
    # `members/{id}/ledger/` is a view of its own so that its filters describe entries.

    queryset = Entry.objects.none()
    required_scopes = {"list": "members:read"}
    pagination_class = LedgerCursorPagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = EntryFilter

    @extend_schema(
        summary="A member's ledger, newest first (cursor-paginated)",
        parameters=[OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)],
        responses={200: s.EntrySerializer(many=True), **_errors(400, 404)},
    )
    def list(self, request, id=None):
        member = _member(id)
        entries = self.filter_queryset(ledger_selectors.entries_for(member=member))
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(s.EntrySerializer(page, many=True).data)


class CardViewSet(ChannelViewSet):
    lookup_field = "number"
    lookup_url_kwarg = "number"
    lookup_value_regex = r"[^/]+"
    queryset = Card.objects.none()
    required_scopes = {"retrieve": "members:read"}

    @extend_schema(
        summary="The member behind an active card",
        responses={200: s.MemberSerializer, **_errors(404, 409)},
        examples=[OpenApiExample("member", value=MEMBER_EXAMPLE, response_only=True)],
    )
    def retrieve(self, request, number=None):
        member = member_selectors.card_active_member(number)
        if member.status == Member.Status.ERASED:
            raise NotFound(code="member_not_found")
        member = _member_queryset().get(pk=member.pk)
        return Response(s.MemberSerializer(_member_data(member)).data)


# --- purchases and returns ---


class PurchaseViewSet(ChannelViewSet):
    queryset = Purchase.objects.none()
    required_scopes = {"create": "purchases:write", "returns": "purchases:write"}

    @extend_schema(
        summary="Record a purchase and earn its points",
        request=s.PurchaseCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: s.PurchaseResultSerializer, **_errors(400, 404, 409, 422)},
        examples=[
            OpenApiExample(
                "purchase",
                value={
                    "card_number": "6280001234567890",
                    "external_id": "till-7-000123",
                    "amount": "25.00",
                    "currency": "EUR",
                    "store": "AMS-01",
                    "lines": [
                        {
                            "sku": "8710000001",
                            "category": "coffee",
                            "quantity": 2,
                            "amount": "25.00",
                        }
                    ],
                },
                request_only=True,
            ),
            OpenApiExample(
                "earned",
                value={
                    "id": 1042,
                    "member": "0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10",
                    "status": "recorded",
                    "points_earned": 25,
                    "pending_points": 0,
                    "rules": [{"rule": "Base rate", "rule_id": 3, "points": 25}],
                    "balance": 145,
                },
                response_only=True,
                status_codes=["201"],
            ),
        ],
    )
    @idempotent
    def create(self, request):
        serializer = s.PurchaseCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = _channel(request)
        store = data.get("store", "")
        if channel.stores:
            if not store and len(channel.stores) == 1:
                store = channel.stores[0]
            if store not in channel.stores:
                raise exceptions.PermissionDenied(_("This key may not record for this store."))
        with write_atomic(request):
            # The member is looked up and locked in one query inside purchase_record, whose
            # failure rolls back this whole transaction (so it needs no savepoint of its own).
            result = campaign_services.purchase_record(
                member_id=_member_public_id(data["member"]) if data.get("member") else None,
                card_number=data.get("card_number"),
                channel=channel.name,
                external_id=data["external_id"],
                amount=data["amount"],
                currency=data["currency"],
                occurred_at=data.get("occurred_at"),
                store=store,
                lines=[dict(line) for line in data.get("lines", [])],
                savepoint=False,
            )
            purchase = result.purchase
            body = {
                "id": purchase.pk,
                "member": purchase.member.public_id,
                "status": result.status,
                "points_earned": result.points_earned,
                "pending_points": result.pending,
                "rules": result.rules,
                "balance": result.balance,
            }
            if result.points_earned:
                event_emit(
                    event_type="points.earned",
                    data={
                        "member": purchase.member.public_id,
                        "points": result.points_earned,
                        "balance": result.balance,
                        "purchase": purchase.pk,
                        "external_id": purchase.external_id,
                    },
                    channel=channel.name,
                )
            if result.tier_change is not None:
                change = result.tier_change
                event_emit(
                    event_type="tier.changed",
                    data={
                        "member": purchase.member.public_id,
                        "from": change.from_tier.name if change.from_tier_id else None,
                        "to": change.to_tier.name if change.to_tier_id else None,
                        "reason": change.reason,
                    },
                    channel=channel.name,
                )
        return Response(s.PurchaseResultSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Record a full or partial return and take back its points",
        request=s.ReturnCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: s.ReturnResultSerializer, **_errors(400, 404, 409, 422)},
        examples=[
            OpenApiExample("full return", value={"external_id": "R-1"}, request_only=True),
            OpenApiExample(
                "partial, by line",
                value={"lines": [{"line": 311, "quantity": 1}]},
                request_only=True,
            ),
        ],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def returns(self, request, pk=None):
        serializer = s.ReturnCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        purchase = _object(_purchases_visible(_channel(request)), pk, code="purchase_not_found")
        lines = data.get("lines")
        with write_atomic(request):
            result = campaign_services.return_record(
                purchase=purchase,
                lines=(
                    [{"line_id": item["line"], "quantity": item["quantity"]} for item in lines]
                    if lines
                    else None
                ),
                amount=data.get("amount") if not lines else None,
                external_id=data.get("external_id", ""),
            )
        body = {
            "id": result.return_record.pk,
            "purchase": purchase.pk,
            "points_reversed": result.points_reversed,
            "balance": result.balance,
        }
        return Response(s.ReturnResultSerializer(body).data, status=status.HTTP_201_CREATED)


# --- engagement events ---


class EventViewSet(ChannelViewSet):
    queryset = Member.objects.none()
    required_scopes = {"create": "events:write"}

    @extend_schema(
        summary="Record an engagement event (review, survey, referral, share)",
        request=s.EventCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: s.EventResultSerializer, **_errors(400, 404, 409, 422)},
        examples=[
            OpenApiExample(
                "review",
                value={
                    "kind": "review",
                    "member": "0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10",
                    "reference": "review-5531",
                },
                request_only=True,
            )
        ],
    )
    @idempotent
    def create(self, request):
        serializer = s.EventCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = _channel(request)
        member = _member(data["member"])
        with write_atomic(request):
            event = campaign_services.event_record(
                member=member,
                kind=data["kind"],
                reference=data.get("reference", ""),
                channel=channel.name,
            )
            credited = event.status == EngagementEvent.Status.CREDITED
            points = event.points if credited else 0
            balance = ledger_selectors.balance_summary(member=member)["balance"]
            if points:
                event_emit(
                    event_type="points.earned",
                    data={
                        "member": member.public_id,
                        "points": points,
                        "balance": balance,
                        "event": event.pk,
                        "kind": data["kind"],
                    },
                    channel=channel.name,
                )
        body = {
            "id": event.pk,
            "kind": data["kind"],
            "status": event.status,
            "points_earned": points,
            "balance": balance,
        }
        return Response(s.EventResultSerializer(body).data, status=status.HTTP_201_CREATED)


# --- redemptions ---


class RedemptionViewSet(ChannelViewSet):
    queryset = Redemption.objects.none()
    required_scopes = {
        "create": "redemptions:write",
        "confirm": "redemptions:write",
        "cancel": "redemptions:write",
    }

    @extend_schema(
        summary="Redeem a reward or a number of points (or only reserve them)",
        request=s.RedemptionCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: s.RedemptionSerializer, **_errors(400, 404, 409, 422)},
        examples=[
            OpenApiExample(
                "points",
                value={"member": "0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10", "points": 100},
                request_only=True,
            ),
            OpenApiExample(
                "reward, reserved at a till",
                value={
                    "member": "0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10",
                    "reward": 7,
                    "reserve": True,
                },
                request_only=True,
            ),
            OpenApiExample(
                "redeemed",
                value={
                    "id": 88,
                    "member": "0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10",
                    "reward": 7,
                    "status": "confirmed",
                    "points": 500,
                    "code": "K7PQ-2M9X",
                    "balance": 145,
                    "available": 145,
                },
                response_only=True,
                status_codes=["201"],
            ),
            ERROR_EXAMPLE,
        ],
    )
    @idempotent
    def create(self, request):
        serializer = s.RedemptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = _channel(request)
        member = _member(data["member"], queryset=Member.objects.select_related("tier"))
        reward = None
        if data.get("reward") is not None:
            reward = Reward.objects.filter(pk=data["reward"], active=True).first()
            if reward is None:
                raise NotFound(code="reward_not_found")
        service = (
            reward_services.redemption_reserve
            if data["reserve"]
            else reward_services.redemption_redeem
        )
        with write_atomic(request):
            redemption = service(
                member=member,
                reward=reward,
                points=data.get("points"),
                channel=channel.name,
                channel_kind=channel.kind,
                reference=data.get("reference", ""),
            )
            body = _redemption_data(redemption)
            if redemption.status == Redemption.Status.CONFIRMED:
                _emit_confirmed(body, channel)
        return Response(s.RedemptionSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Confirm a reserved redemption (the held points are debited)",
        request=None,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: s.RedemptionSerializer, **_errors(404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def confirm(self, request, pk=None):
        channel = _channel(request)
        redemption = _object(_redemptions_visible(channel), pk, code="redemption_not_found")
        was = redemption.status
        with write_atomic(request):
            redemption = reward_services.redemption_confirm(redemption=redemption)
            body = _redemption_data(redemption)
            if was != redemption.status == Redemption.Status.CONFIRMED:
                _emit_confirmed(body, channel)
        return Response(s.RedemptionSerializer(body).data)

    @extend_schema(
        summary="Cancel a reserved redemption (points, stock and code return)",
        request=None,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={200: s.RedemptionSerializer, **_errors(404, 409)},
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        channel = _channel(request)
        redemption = _object(_redemptions_visible(channel), pk, code="redemption_not_found")
        redemption = reward_services.redemption_cancel(redemption=redemption)
        return Response(s.RedemptionSerializer(_redemption_data(redemption)).data)


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@authentication_classes([])
@permission_classes([])
@throttle_classes([])
def not_found(request, path=""):
    """Every other path under /api/: a JSON 404 like the rest of the API, not an HTML page."""
    raise exceptions.NotFound()


def _emit_confirmed(body: dict, channel: Channel) -> None:
    event_emit(
        event_type="redemption.confirmed",
        data={key: body[key] for key in ("id", "member", "reward", "points", "balance")},
        channel=channel.name,
    )
