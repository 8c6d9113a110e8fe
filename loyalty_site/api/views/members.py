"""Members: enrol, profile, rewards; their ledger; the member behind a card."""

from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.response import Response

from campaigns import offers as campaign_offers
from campaigns import services as campaign_services
from ledger import selectors as ledger_selectors
from ledger.models import Entry
from loyalty_site.api import serializers as s
from loyalty_site.api.answers import member_answer, member_answer_member
from loyalty_site.api.filters import UtcIsoDateTimeFilter
from loyalty_site.api.idempotency import idempotent, write_atomic
from loyalty_site.api.pagination import LedgerCursorPagination
from loyalty_site.api.permissions import channel_of
from loyalty_site.api.schema import (
    CARD_NUMBER_PARAMETER,
    ENROL_EXAMPLES,
    IDEMPOTENCY_PARAMETER,
    MEMBER_EXAMPLES,
    MEMBER_ID_PARAMETER,
    PATH_CODES,
    WRITE_CODES,
    error_responses,
)
from loyalty_site.api.views.base import ChannelViewSet, member_get, member_reach
from loyalty_site.channels import partner_link
from loyalty_site.models import Channel
from members import selectors as member_selectors
from members.models import Card, Member
from rewards import selectors as reward_selectors


@extend_schema_view(
    retrieve=extend_schema(
        summary="A member's profile, balance and tier",
        parameters=[MEMBER_ID_PARAMETER],
        responses={200: s.MemberSerializer, **error_responses(*PATH_CODES, "member_not_found")},
        examples=MEMBER_EXAMPLES,
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
        "offers": "members:read",
    }

    @extend_schema(
        summary="Enrol a member",
        request=s.MemberEnrolSerializer,
        parameters=[IDEMPOTENCY_PARAMETER],
        responses={
            201: s.MemberEnrolledSerializer,
            **error_responses(
                *WRITE_CODES,
                "email_taken",
                "phone_taken",
                "external_id_taken",
                "card_number_exhausted",
                "invalid_email",
                "invalid_phone",
                "invalid_referral",
            ),
        },
        examples=ENROL_EXAMPLES,
    )
    @idempotent
    def create(self, request):
        serializer = s.MemberEnrolSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        channel = channel_of(request)
        with write_atomic(request):
            member = campaign_services.member_enrol_referred(
                referral_code=data.get("referral_code", ""),
                email=data["email"],
                first_name=data.get("first_name", ""),
                last_name=data.get("last_name", ""),
                phone=data.get("phone", ""),
                birth_date=data.get("birth_date"),
                external_id=data.get("external_id", ""),
                consents=[purpose for purpose, on in data.get("consents", {}).items() if on],
                channel=channel.name,
            )
            partner_link(channel=channel, member=member)
            body = member_answer(member_answer_member(pk=member.pk), channel=channel)
        return Response(s.MemberEnrolledSerializer(body).data, status=status.HTTP_201_CREATED)

    def retrieve(self, request, id=None):
        channel = channel_of(request)
        member = member_get(id, channel=channel, lookup=member_answer_member)
        return Response(s.MemberSerializer(member_answer(member, channel=channel)).data)

    @extend_schema(
        summary="Rewards this member may see and afford in this channel",
        parameters=[MEMBER_ID_PARAMETER],
        responses={
            200: s.RewardSerializer(many=True),
            **error_responses(*PATH_CODES, "member_not_found"),
        },
    )
    @action(detail=True, methods=["get"])
    def rewards(self, request, id=None):
        channel = channel_of(request)
        member = member_get(id, channel=channel, queryset=Member.objects.select_related("tier"))
        rewards = reward_selectors.rewards_available(member=member, channel_kind=channel.kind)
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

    @extend_schema(
        summary="Personalised offers for this member, chosen from their own purchase history",
        description=(
            "One offer per active offer campaign the member is in (never for its control "
            "group). Redeem one with `POST redemptions/` and its reward; an offer-only reward "
            "is refused (`reward_not_offered`) to members not offered it."
        ),
        parameters=[MEMBER_ID_PARAMETER],
        responses={
            200: s.OfferSerializer(many=True),
            **error_responses(*PATH_CODES, "member_not_found"),
        },
    )
    @action(detail=True, methods=["get"])
    def offers(self, request, id=None):
        channel = channel_of(request)
        member = member_get(id, channel=channel, queryset=Member.objects.select_related("tier"))
        identify_by = "card_number" if channel.kind == Channel.Kind.PARTNER else "member"
        data = [
            {
                "reward": offer.reward.pk,
                "kind": offer.reward.kind,
                "name": offer.reward.name,
                "description": offer.reward.description,
                "points": offer.reward.cost,
                "campaign": offer.campaign.pk,
                "rule": offer.option.rule,
                "why": offer.why,
                "valid_until": offer.valid_until,
                "redeem": {
                    "method": "POST",
                    "path": reverse("redemption-list"),
                    "reward": offer.reward.pk,
                    "identify_by": identify_by,
                },
            }
            for offer in campaign_offers.member_offers(member=member, channel_kind=channel.kind)
        ]
        return Response(s.OfferSerializer(data, many=True).data)


class EntryFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=Entry.Kind.choices)
    created_after = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Entry
        fields = ["kind", "created_after", "created_before"]

    def is_valid(self):
        # An empty `kind=` or `created_after=` is refused like any other value that is not one
        # (django-filter would ignore it): the schema says what each parameter takes.
        valid = super().is_valid()
        for name in self.filters:
            if self.data.get(name) == "":
                self.form.add_error(name, _("Give a value, or leave the parameter out."))
                valid = False
        return valid


class LedgerViewSet(ChannelViewSet):
    # `members/{id}/ledger/` is a view of its own so that its filters describe entries.

    queryset = Entry.objects.none()
    required_scopes = {"list": "members:read"}
    pagination_class = LedgerCursorPagination
    filter_backends = [filters.DjangoFilterBackend]
    filterset_class = EntryFilter

    @extend_schema(
        summary="A member's ledger, newest first (cursor-paginated)",
        parameters=[MEMBER_ID_PARAMETER],
        responses={
            200: s.EntrySerializer(many=True),
            # `invalid`: a filter's value; `not_found`: a cursor that is not one of ours.
            **error_responses(*PATH_CODES, "invalid", "member_not_found", "not_found"),
        },
    )
    def list(self, request, id=None):
        channel = channel_of(request)
        member = member_get(id, channel=channel)
        entries = ledger_selectors.entries_for(member=member)
        if channel.kind == Channel.Kind.PARTNER:
            # A partner sees what happened through it, not the member's other channels.
            entries = entries.filter(channel=channel.name)
        entries = self.filter_queryset(entries)
        page = self.paginate_queryset(entries)
        return self.get_paginated_response(s.EntrySerializer(page, many=True).data)


class CardViewSet(ChannelViewSet):
    lookup_field = "number"
    lookup_url_kwarg = "number"
    queryset = Card.objects.none()
    required_scopes = {"retrieve": "members:read"}

    @extend_schema(
        summary="The member behind an active card",
        parameters=[CARD_NUMBER_PARAMETER],
        responses={
            200: s.MemberSerializer,
            **error_responses(*PATH_CODES, "card_not_found", "member_not_found", "card_blocked"),
        },
        examples=MEMBER_EXAMPLES,
    )
    def retrieve(self, request, number=None):
        channel = channel_of(request)
        member = member_reach(member_selectors.card_active_member(number), channel=channel)
        member = member_answer_member(pk=member.pk)
        return Response(s.MemberSerializer(member_answer(member, channel=channel)).data)
