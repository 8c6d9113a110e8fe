"""Engagement events (review, survey, referral, share) and the points they earn."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from campaigns import services as campaign_services
from campaigns.models import EngagementEvent
from ledger import selectors as ledger_selectors
from loyalty_site.api import serializers as s
from loyalty_site.api.idempotency import idempotent, write_atomic
from loyalty_site.api.permissions import channel_of
from loyalty_site.api.schema import EVENT_EXAMPLES, IDEMPOTENCY_PARAMETER, error_responses
from loyalty_site.api.views.base import ChannelViewSet, member_get
from members.models import Member


class EventViewSet(ChannelViewSet):
    queryset = Member.objects.none()
    required_scopes = {"create": "events:write"}

    @extend_schema(
        summary="Record an engagement event (review, survey, referral, share)",
        request=s.EventCreateSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={201: s.EventResultSerializer, **error_responses(400, 404, 409, 413, 422, 503)},
        examples=EVENT_EXAMPLES,
    )
    @idempotent
    def create(self, request):
        serializer = s.EventCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = channel_of(request)
        member = member_get(data["member"], channel=channel)
        with write_atomic(request):
            event = campaign_services.event_record(
                member=member,
                kind=data["kind"],
                reference=data.get("reference", ""),
                channel=channel.name,
                score=data.get("score"),
            )
            credited = event.status == EngagementEvent.Status.CREDITED
            points = event.points if credited else 0
            balance = ledger_selectors.balance_summary(member=member)["balance"]
        body = {
            "id": event.pk,
            "kind": data["kind"],
            "status": event.status,
            "points_earned": points,
            "balance": balance,
            "score": event.score,
        }
        return Response(s.EventResultSerializer(body).data, status=status.HTTP_201_CREATED)
