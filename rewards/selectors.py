"""Reads of the catalogue shared by the channel API, the member page, the admin and the
catalogue pages."""

from datetime import datetime, time, timedelta

from django.db.models import (
    Count,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, TruncWeek
from django.utils import timezone

from ledger import selectors as ledger_selectors
from members.models import AuditEntry, Member, Tier
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


# The catalogue page's "low stock": this many items or voucher codes left, or fewer.
LOW_STOCK = 10


def _count(queryset) -> Coalesce:
    # A counting subquery per row, not a join: two joined counts would multiply each other.
    return Coalesce(
        Subquery(
            queryset.order_by().values("reward_id").annotate(n=Count("pk")).values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


def rewards_catalogue(
    *,
    now: datetime | None = None,
    active: bool | None = None,
    kind: str = "",
    low_stock: bool = False,
):
    """The catalogue as marketing reads it: every reward (offer-only ones too) with its figures.

    Each row has ``codes_left`` (unused codes not past their date), ``reserved`` (open
    reservations), ``redeemed_30d`` and ``redeemed_total`` (confirmed redemptions, by when they
    were made), its tier prices (with their tiers) and visible tiers prefetched: three queries
    for a page, whatever its length.
    """
    now = now or timezone.now()
    redemptions = Redemption.objects.filter(reward_id=OuterRef("pk"))
    confirmed = redemptions.filter(status=Redemption.Status.CONFIRMED)
    rewards = Reward.objects.annotate(
        codes_left=_count(
            VoucherCode.objects.filter(
                reward_id=OuterRef("pk"), status=VoucherCode.Status.UNUSED
            ).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        ),
        reserved=_count(redemptions.filter(status=Redemption.Status.RESERVED)),
        redeemed_30d=_count(confirmed.filter(created_at__gte=now - timedelta(days=30))),
        redeemed_total=_count(confirmed),
    ).prefetch_related(
        Prefetch(
            "tier_prices",
            queryset=RewardTierPrice.objects.select_related("tier").order_by("tier__rank"),
        ),
        Prefetch("visible_tiers", queryset=Tier.objects.order_by("rank")),
    )
    if active is not None:
        rewards = rewards.filter(active=active)
    if kind:
        rewards = rewards.filter(kind=kind)
    if low_stock:
        rewards = rewards.filter(
            Q(stock__lte=LOW_STOCK) | Q(kind=Reward.Kind.VOUCHER, codes_left__lte=LOW_STOCK)
        )
    return rewards.order_by("sort_order", "points", "name_en", "pk")


def reward_redemptions_weekly(*, reward: Reward, weeks: int = 26, now: datetime | None = None):
    """Confirmed redemptions of the reward per week (Monday, programme's time zone), the last
    `weeks` weeks including this one, oldest first, weeks without any as 0: one grouped query."""
    now = timezone.localtime(now or timezone.now())
    this_monday = now.date() - timedelta(days=now.weekday())
    first = this_monday - timedelta(weeks=weeks - 1)
    start = timezone.make_aware(datetime.combine(first, time.min))
    counts = dict(
        Redemption.objects.filter(
            reward=reward, status=Redemption.Status.CONFIRMED, created_at__gte=start
        )
        .annotate(week=TruncWeek("created_at", tzinfo=timezone.get_current_timezone()))
        .order_by()
        .values("week")
        .annotate(n=Count("pk"))
        .values_list("week", "n")
    )
    by_date = {week.date() if isinstance(week, datetime) else week: n for week, n in counts.items()}
    return [
        (first + timedelta(weeks=i), by_date.get(first + timedelta(weeks=i), 0))
        for i in range(weeks)
    ]


def reward_codes_by_status(*, reward: Reward) -> dict[str, int]:
    """How many of the reward's voucher codes are in each status (every status, 0 if none)."""
    counts = dict(
        VoucherCode.objects.filter(reward=reward)
        .order_by()
        .values("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    return {status: counts.get(status, 0) for status in VoucherCode.Status.values}


def reward_redemptions_recent(*, reward: Reward):
    """The reward's redemptions, newest first, with their member and code (paginate it)."""
    return (
        Redemption.objects.filter(reward=reward)
        .select_related("member", "voucher_code")
        .order_by("-created_at", "-pk")
    )


# --- customer service's shipping list and redemption search (rewards/views.py) ---------------
#
# Both are read by keyset, never counted or offset: a page is at most `limit` rows after the
# cursor, the (created_at, id) of the last row of the page before. A redemption's time is when
# it was made (a shipment's too: the export filters its dates the same way).


def _after(rows, *, cursor: tuple[datetime, int] | None, oldest_first: bool):
    if cursor is None:
        return rows
    at, pk = cursor
    # The first condition alone is an index range on created_at; the second breaks ties.
    if oldest_first:
        return rows.filter(Q(created_at__gte=at) & (Q(created_at__gt=at) | Q(pk__gt=pk)))
    return rows.filter(Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(pk__lt=pk)))


def _between(rows, *, start: datetime | None, end: datetime | None):
    if start is not None:
        rows = rows.filter(created_at__gte=start)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    return rows


def shipments_search(
    *,
    status: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: tuple[datetime, int] | None = None,
    limit: int,
) -> list[Redemption]:
    """Redemptions with something to ship, with their member and reward, at most `limit`.

    Parcels still to ship come oldest first (the one waiting longest is the next to pack);
    every other status, or all of them, newest first. Reads through redemption_fulfilment_idx
    (fulfilment status, created_at). `start` is inclusive, `end` exclusive.
    """
    oldest_first = shipments_oldest_first(status)
    rows = Redemption.objects.exclude(fulfilment_status="")
    if status:
        rows = rows.filter(fulfilment_status=status)
    rows = _after(_between(rows, start=start, end=end), cursor=cursor, oldest_first=oldest_first)
    order = ("created_at", "id") if oldest_first else ("-created_at", "-id")
    return list(rows.select_related("member", "reward").order_by(*order)[:limit])


def shipments_oldest_first(status: str) -> bool:
    return status == Redemption.FulfilmentStatus.TO_SHIP


def redemptions_search(
    *,
    member_ids: list[int] | None = None,
    reward_id: int | None = None,
    status: str = "",
    code: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    cursor: tuple[datetime, int] | None = None,
    limit: int,
) -> list[Redemption]:
    """Redemptions newest first, with member, reward and voucher code, at most `limit`.

    `member_ids` (the members a search box found), `reward_id`, `status` and `code` (a voucher
    code, exactly: its unique index finds it) narrow the search; `start` is inclusive, `end`
    exclusive.
    """
    rows = Redemption.objects.all()
    if member_ids is not None:
        rows = rows.filter(member_id__in=list(member_ids))
    if reward_id is not None:
        rows = rows.filter(reward_id=reward_id)
    if status:
        rows = rows.filter(status=status)
    if code:
        rows = rows.filter(voucher_code__code=code)
    rows = _after(_between(rows, start=start, end=end), cursor=cursor, oldest_first=False)
    return list(
        rows.select_related("member", "reward", "voucher_code").order_by("-created_at", "-id")[
            :limit
        ]
    )


def redemption_detail(*, redemption_id: int) -> Redemption | None:
    """One redemption with its member, reward, voucher code, hold and ledger entry."""
    return (
        Redemption.objects.select_related("member", "reward", "voucher_code", "hold", "entry")
        .filter(pk=redemption_id)
        .first()
    )


def redemption_history(*, redemption: Redemption) -> list[AuditEntry]:
    """What staff did to this redemption (cancelled it, moved its parcel on, sent its voucher
    again), newest first: the member's audit entries that name it. Reads through
    audit_member_recent; a member has few entries."""
    return list(
        AuditEntry.objects.filter(
            member_id=redemption.member_id, details__redemption_id=redemption.pk
        )
        .select_related("actor")
        .order_by("-at", "-id")
    )
