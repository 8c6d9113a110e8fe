"""Redemptions: redeem or reserve a reward or points, then confirm or cancel at a till."""

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import offers as campaign_offers
from loyalty_site.api import serializers as s
from loyalty_site.api.answers import redemption_answer
from loyalty_site.api.idempotency import idempotent, write_atomic
from loyalty_site.api.permissions import channel_of
from loyalty_site.api.schema import (
    IDEMPOTENCY_PARAMETER,
    PATH_CODES,
    REDEMPTION_EXAMPLES,
    WRITE_CODES,
    error_responses,
    object_id_parameter,
)
from loyalty_site.api.views.base import (
    ChannelViewSet,
    member_get,
    member_reach,
    object_get,
    redemptions_visible,
)
from loyalty_site.errors import NotFound
from loyalty_site.models import Channel
from members import selectors as member_selectors
from members.models import Member
from rewards import services as reward_services
from rewards.models import Redemption, Reward

# Confirm and cancel take no body, but an Idempotency-Key and a redemption's id.
CONFIRM_CANCEL_CODES = (
    *PATH_CODES,
    "idempotency_conflict",
    "idempotency_in_progress",
    "busy",
    "redemption_not_found",
    "hold_not_open",
)


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
        responses={
            201: s.RedemptionSerializer,
            **error_responses(
                *WRITE_CODES,
                "member_not_found",
                "card_not_found",
                "card_blocked",
                "reward_not_found",
                "insufficient_points",
                "account_in_debt",
                "member_blocked",
                "reward_unavailable",
                "reward_not_offered",
                "limit_reached",
                "out_of_stock",
                "voucher_pool_empty",
                "invalid_points",
            ),
        },
        examples=REDEMPTION_EXAMPLES,
    )
    @idempotent
    def create(self, request):
        serializer = s.RedemptionCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = channel_of(request)
        if data.get("card_number") is not None:
            member = member_reach(
                member_selectors.card_active_member(data["card_number"]), channel=channel
            )
        elif channel.kind == Channel.Kind.PARTNER:
            # A partner spends a member's points only when the member presents their card.
            raise exceptions.PermissionDenied(_("A partner key redeems by card number only."))
        else:
            member = member_get(
                data["member"], channel=channel, queryset=Member.objects.select_related("tier")
            )
        reward = None
        offered = False
        if data.get("reward") is not None:
            reward = Reward.objects.filter(pk=data["reward"], active=True).first()
            if reward is None:
                raise NotFound(code="reward_not_found")
            if reward.offer_only:
                # rewards cannot ask campaigns (the layering): the use case asks for it.
                offered = campaign_offers.member_offered(
                    member=member, reward=reward, channel_kind=channel.kind
                )
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
                offered=offered,
            )
            body = redemption_answer(redemption)
        return Response(s.RedemptionSerializer(body).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Confirm a reserved redemption (the held points are debited)",
        request=None,
        parameters=[object_id_parameter("The redemption's id."), IDEMPOTENCY_PARAMETER],
        responses={
            200: s.RedemptionSerializer,
            **error_responses(
                *CONFIRM_CANCEL_CODES,
                "reservation_expired",
                "redemption_not_reserved",
                "insufficient_points",
                "member_blocked",
            ),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def confirm(self, request, pk=None):
        channel = channel_of(request)
        redemption = object_get(redemptions_visible(channel), pk, code="redemption_not_found")
        with write_atomic(request):
            redemption = reward_services.redemption_confirm(redemption=redemption)
            body = redemption_answer(redemption)
        return Response(s.RedemptionSerializer(body).data)

    @extend_schema(
        summary="Cancel a reserved redemption (points, stock and code return)",
        request=None,
        parameters=[object_id_parameter("The redemption's id."), IDEMPOTENCY_PARAMETER],
        responses={
            200: s.RedemptionSerializer,
            **error_responses(*CONFIRM_CANCEL_CODES, "redemption_confirmed"),
        },
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def cancel(self, request, pk=None):
        channel = channel_of(request)
        redemption = object_get(redemptions_visible(channel), pk, code="redemption_not_found")
        redemption = reward_services.redemption_cancel(redemption=redemption)
        return Response(s.RedemptionSerializer(redemption_answer(redemption)).data)
