"""What a reward costs a member and whether they may have it; its stock."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from loyalty_site.errors import DomainError
from members.errors import ReasonRequired
from members.models import Member
from members.services import audit_record
from rewards.errors import (
    LimitReached,
    OutOfStock,
    RewardNotOffered,
    RewardUnavailable,
)
from rewards.models import Redemption, Reward, RewardTierPrice

# Redemptions that count towards a reward's per-member limit: a cancelled or expired
# reservation gave the member nothing.
COUNTING_STATUSES = (Redemption.Status.RESERVED, Redemption.Status.CONFIRMED)


def reward_cost(*, reward: Reward, member: Member) -> int:
    """What this member pays for the reward: their tier's price if it has one."""
    tier_id = member.tier_id
    if tier_id is not None:
        price = (
            RewardTierPrice.objects.filter(reward=reward, tier_id=tier_id)
            .values_list("points", flat=True)
            .first()
        )
        if price is not None:
            return price
    return reward.points


def _reward_check(
    *, reward: Reward, member: Member, channel_kind: str, now: datetime, offered: bool = False
) -> None:
    if not reward.active or not reward.is_valid_at(now):
        raise RewardUnavailable()
    if reward.offer_only and not offered:
        raise RewardNotOffered()
    if channel_kind and reward.channels and channel_kind not in reward.channels:
        raise RewardUnavailable()
    tiers = set(reward.visible_tiers.values_list("pk", flat=True))
    if tiers and member.tier_id not in tiers:
        raise RewardUnavailable()


def _limit_check(*, reward: Reward, member: Member) -> None:
    if reward.limit_per_member is None:
        return
    taken = Redemption.objects.filter(
        member=member, reward=reward, status__in=COUNTING_STATUSES
    ).count()
    if taken >= reward.limit_per_member:
        raise LimitReached()


def _stock_take(*, reward: Reward) -> None:
    if reward.stock is None:
        return
    # Conditional decrement: PostgreSQL re-checks `stock > 0` after waiting for a concurrent
    # redeemer's row lock, so the last item goes to exactly one of them.
    taken = Reward.objects.filter(pk=reward.pk, stock__gt=0).update(stock=F("stock") - 1)
    if not taken:
        raise OutOfStock()


def _stock_return(*, reward_id: int) -> None:
    Reward.objects.filter(pk=reward_id, stock__isnull=False).update(stock=F("stock") + 1)


# What a catalogue edit may change on the reward row itself. `stock` is not in it: redemptions
# take stock with a conditional UPDATE while the editor looks at the form, so writing the
# form's number back would undo their takes (see reward_save).
REWARD_FIELDS = (
    "kind",
    "name_en",
    "name_nl",
    "description_en",
    "description_nl",
    "image_url",
    "points",
    "valid_from",
    "valid_until",
    "limit_per_member",
    "channels",
    "sort_order",
    "active",
    "offer_only",
)


@transaction.atomic
def reward_save(
    *,
    reward: Reward,
    visible_tiers: list | None = None,
    tier_prices: dict[int, int] | None = None,
    stock_seen: int | None = None,
    actor,
    reason: str,
) -> Reward:
    """Create or change a catalogue reward with who may see it and its tier prices; audited.

    ``tier_prices`` maps a tier id to its price in points; tiers left out have none (the
    reward's own price applies). ``stock_seen`` is the stock the editor was shown: a new stock
    is applied as the difference to it, so items redeemed meanwhile stay taken (an editor who
    saw 10 and typed 15 adds 5, whatever the stock is now); an unchanged number leaves the
    stock alone. From or to unlimited (empty) the new value is written as given.
    """
    if not (reason or "").strip():
        raise ReasonRequired(fields={"reason": ReasonRequired.default_detail})
    creating = reward.pk is None
    if creating:
        before = None
        reward.save()
        changed = ["created"]
    else:
        before = Reward.objects.get(pk=reward.pk)
        changed = [f for f in REWARD_FIELDS if getattr(before, f) != getattr(reward, f)]
        reward.save(update_fields=[*REWARD_FIELDS, "updated_at"])
        changed += _stock_change(reward=reward, stock_seen=stock_seen, current=before.stock)
    if visible_tiers is not None:
        old = set(reward.visible_tiers.values_list("pk", flat=True)) if before else set()
        if old != {tier.pk for tier in visible_tiers}:
            reward.visible_tiers.set(visible_tiers)
            changed.append("visible_tiers")
    if tier_prices is not None and _tier_prices_set(reward=reward, prices=tier_prices):
        changed.append("tier_prices")
    audit_record(
        actor=actor,
        action="reward_create" if creating else "reward_change",
        reason=reason.strip(),
        details={"reward_id": reward.pk, "changed": changed},
    )
    return reward


def _stock_change(*, reward: Reward, stock_seen: int | None, current: int | None) -> list[str]:
    wanted = reward.stock
    if wanted == stock_seen:
        reward.stock = current
        return []
    rewards = Reward.objects.filter(pk=reward.pk)
    if wanted is None or stock_seen is None or current is None:
        rewards.update(stock=wanted)
    else:
        try:
            # A savepoint: a stock below zero trips reward_stock_not_negative, and the
            # refusal must leave the rest of the transaction usable for the caller's rollback.
            with transaction.atomic():
                rewards.update(stock=F("stock") + (wanted - stock_seen))
        except IntegrityError:
            raise DomainError(
                _("Fewer items are left than you take away; reload the page and try again."),
                code="invalid_field",
                fields={"stock": _("Fewer items are left than you take away.")},
            ) from None
    reward.refresh_from_db(fields=["stock"])
    return ["stock"]


def _tier_prices_set(*, reward: Reward, prices: dict[int, int]) -> bool:
    old = dict(RewardTierPrice.objects.filter(reward=reward).values_list("tier_id", "points"))
    if old == prices:
        return False
    RewardTierPrice.objects.filter(reward=reward).exclude(tier_id__in=list(prices)).delete()
    for tier_id, points in prices.items():
        if old.get(tier_id) != points:
            RewardTierPrice.objects.update_or_create(
                reward=reward, tier_id=tier_id, defaults={"points": points}
            )
    return True
