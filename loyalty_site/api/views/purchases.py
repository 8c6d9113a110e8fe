"""Purchases and their returns: points earned and taken back."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import services as campaign_services
from ledger.models import Purchase
from loyalty_site.api import serializers as s
from loyalty_site.api.idempotency import idempotent, write_atomic
from loyalty_site.api.permissions import channel_of
from loyalty_site.api.schema import (
    IDEMPOTENCY_PARAMETER,
    PATH_CODES,
    PURCHASE_EXAMPLES,
    RETURN_EXAMPLES,
    WRITE_CODES,
    error_responses,
    object_id_parameter,
)
from loyalty_site.api.views.base import (
    ChannelViewSet,
    member_get,
    member_public_id,
    object_get,
    purchases_visible,
)
from loyalty_site.channels import partner_link
from loyalty_site.models import Channel


class PurchaseViewSet(ChannelViewSet):
    queryset = Purchase.objects.none()
    required_scopes = {"create": "purchases:write", "returns": "purchases:write"}

    @extend_schema(
        summary="Record a purchase and earn its points",
        request=s.PurchaseCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: s.PurchaseResultSerializer,
            **error_responses(
                *WRITE_CODES,
                "member_not_found",
                "card_not_found",
                "card_blocked",
                "duplicate_purchase",
                "invalid_currency",
                "currency_not_supported",
                "purchase_too_late",
            ),
        },
        examples=PURCHASE_EXAMPLES,
    )
    @idempotent
    def create(self, request):
        channel = channel_of(request)
        serializer = s.PurchaseCreateSerializer(data=request.data, context={"channel": channel})
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        store = data.get("store", "")
        if channel.stores:
            if not store and len(channel.stores) == 1:
                store = channel.stores[0]
            if store not in channel.stores:
                raise exceptions.PermissionDenied(_("This key may not record for this store."))
        if data.get("member") and channel.kind == Channel.Kind.PARTNER:
            # A partner reaches only the members linked to it (a card presented to it links
            # them); by id it may record only for those.
            member_get(data["member"], channel=channel)
        with write_atomic(request):
            # The member is looked up and locked in one query inside purchase_record, whose
            # failure rolls back this whole transaction (so it needs no savepoint of its own).
            result = campaign_services.purchase_record(
                member_id=member_public_id(data["member"]) if data.get("member") else None,
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
            if data.get("card_number"):
                # The member presented their card: a partner may reach them from now on.
                partner_link(channel=channel, member=purchase.member)
            body = {
                "id": purchase.pk,
                "member": purchase.member.public_id,
                "status": result.status,
                "points_earned": result.points_earned,
                "pending_points": result.pending,
                "rules": result.rules,
                "balance": result.balance,
            }
        return Response(s.PurchaseResultSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Record a full or partial return and take back its points",
        request=s.ReturnCreateSerializer,
        parameters=[object_id_parameter("The purchase's id."), IDEMPOTENCY_PARAMETER],
        responses={
            201: s.ReturnResultSerializer,
            **error_responses(
                *WRITE_CODES,
                *PATH_CODES,
                "purchase_not_found",
                "duplicate_return",
                "nothing_to_return",
                "return_exceeds_purchase",
                "unknown_line",
            ),
        },
        examples=RETURN_EXAMPLES,
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def returns(self, request, pk=None):
        serializer = s.ReturnCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        purchase = object_get(purchases_visible(channel_of(request)), pk, code="purchase_not_found")
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
