"""Reads of the catalogue shared by the channel API, the member page and the admin."""

from datetime import datetime

from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from ledger import selectors as ledger_selectors
from members.models import Member
from rewards.models import Redemption, Reward, RewardTierPrice, VoucherCode
from rewards.services import COUNTING_STATUSES
from rewards.services.redemptions import reservations_due
from rewards.services.vouchers import voucher_codes_due


def rewards_visible(
    *, member: Member, channel_kind: str | None = None, now: datetime | None = None
) -> list[Reward]:
    """Rewards the member may see now (affordable or not), each annotated with `cost` (the
    member's price) and `redeemed` (their redemptions counting towards the limit), ordered.

    One query whatever the size of the catalogue.
    """
    now = now or timezone.now()
    tier_id = member.tier_id
    tier_links = Reward.visible_tiers.through.objects.filter(reward_id=OuterRef("pk"))
    rewards = (
        Reward.objects.filter(active=True, offer_only=False)
        .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now))
        .filter(Q(valid_until__isnull=True) | Q(valid_until__gt=now))
        .filter(Q(stock__isnull=True) | Q(stock__gt=0))
        .filter(~Exists(tier_links) | Exists(tier_links.filter(tier_id=tier_id)))
        .exclude(
            Q(kind=Reward.Kind.VOUCHER)
            & ~Exists(
                VoucherCode.objects.filter(
                    reward_id=OuterRef("pk"), status=VoucherCode.Status.UNUSED
                ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            )
        )
        .annotate(
            cost=Coalesce(
                Subquery(
                    RewardTierPrice.objects.filter(
                        reward_id=OuterRef("pk"), tier_id=tier_id
                    ).values("points")[:1],
                    output_field=IntegerField(),
                ),
                F("points"),
                output_field=IntegerField(),
            )
            if tier_id is not None
            else F("points"),
            redeemed=Coalesce(
                Subquery(
                    Redemption.objects.filter(
                        reward_id=OuterRef("pk"), member=member, status__in=COUNTING_STATUSES
                    )
                    .order_by()
                    .values("reward_id")
                    .annotate(n=Count("pk"))
                    .values("n")[:1],
                    output_field=IntegerField(),
                ),
                Value(0),
                output_field=IntegerField(),
            ),
        )
        .filter(Q(limit_per_member__isnull=True) | Q(limit_per_member__gt=F("redeemed")))
        .order_by("sort_order", "cost", "name_en", "pk")
    )
    # Channels are a short JSON list; filtering them here keeps the query portable to SQLite,
    # whose JSON support lacks `contains`. The catalogue is small, the cost negligible.
    return [
        reward
        for reward in rewards
        if not channel_kind or not reward.channels or channel_kind in reward.channels
    ]


def rewards_available(
    *, member: Member, channel_kind: str | None = None, now: datetime | None = None
) -> list[Reward]:
    """The rewards a member may see and afford right now, ordered as the catalogue says."""
    if member.status != Member.Status.ACTIVE:
        return []
    available = ledger_selectors.balance_summary(member=member)["available"]
    if available <= 0:
        return []
    return [
        reward
        for reward in rewards_visible(member=member, channel_kind=channel_kind, now=now)
        if reward.cost <= available
    ]


def redemptions_for(*, member: Member):
    """The member's redemptions, newest first, each with its reward and voucher code."""
    return (
        Redemption.objects.filter(member=member)
        .select_related("reward", "voucher_code")
        .order_by("-created_at", "-id")
    )


def reservations_expiring(*, now: datetime) -> list[int]:
    """Reservations past their time at ``now``, in id order (what the job splits in chunks)."""
    return list(reservations_due(now=now).order_by("pk").values_list("pk", flat=True))


def voucher_codes_expiring(*, now: datetime) -> list[int]:
    """Codes to mark expired at ``now``, in id order (what the job splits in chunks)."""
    return list(voucher_codes_due(now=now).order_by("pk").values_list("pk", flat=True))
