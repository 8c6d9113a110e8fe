"""The abuse guard: whether a purchase looks abnormal enough to wait for a person."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from campaigns.models import (
    AbuseRule,
    EarningAward,
)
from ledger.models import Purchase
from members.models import Member


def abuse_check(
    *, member: Member, purchase: Purchase, points: int, rules: list[AbuseRule] | None = None
) -> str:
    """The reason the first tripped guard gives, or "" when the purchase looks normal."""
    rules = rules if rules is not None else list(AbuseRule.objects.filter(active=True))
    at = purchase.occurred_at
    # Counted by the time a purchase says and by the time it was received: purchases backdated
    # over past days (within the late-upload window) must not walk around a velocity guard.
    received = purchase.created_at or timezone.now()
    hour = _window(at=at, received=received, span=timedelta(hours=1))
    others = Purchase.objects.filter(member=member).exclude(pk=purchase.pk)
    for rule in rules:
        limit = rule.threshold
        if rule.kind == AbuseRule.Kind.MEMBER_VELOCITY:
            count = others.filter(hour)
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase by this member in an hour.",
                    "More than %(n)s purchases by this member in an hour.",
                    int(limit),
                ) % {"n": _figure(limit)}
        elif rule.kind == AbuseRule.Kind.CARD_VELOCITY:
            # Only purchases that presented a card count; one by member id has no card.
            if purchase.card_id is None:
                continue
            count = Purchase.objects.filter(hour, card_id=purchase.card_id).exclude(pk=purchase.pk)
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase with this card in an hour.",
                    "More than %(n)s purchases with this card in an hour.",
                    int(limit),
                ) % {"n": _figure(limit)}
        elif rule.kind == AbuseRule.Kind.STORE_VELOCITY:
            count = others.filter(hour, store=purchase.store)
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase by this member in one store in an hour.",
                    "More than %(n)s purchases by this member in one store in an hour.",
                    int(limit),
                ) % {"n": _figure(limit)}
        elif rule.kind == AbuseRule.Kind.POINTS_PER_DAY:
            earned = (
                EarningAward.objects.filter(
                    Q(occurred_at__gt=at - timedelta(days=1), occurred_at__lte=at)
                    | Q(
                        purchase__created_at__gt=received - timedelta(days=1),
                        purchase__created_at__lte=received,
                    ),
                    member=member,
                )
                .exclude(purchase=purchase)
                .aggregate(total=Sum("points"))["total"]
                or 0
            )
            if earned + points > limit:
                return ngettext(
                    "More than %(n)s point in a day.",
                    "More than %(n)s points in a day.",
                    int(limit),
                ) % {"n": _figure(limit)}
        elif rule.kind == AbuseRule.Kind.ABOVE_NORM:
            history = others.filter(status=Purchase.Status.RECORDED).aggregate(
                n=Count("id"), avg=Avg("amount")
            )
            if (
                history["n"] >= rule.min_history
                and history["avg"]
                and purchase.amount > Decimal(history["avg"]) * limit
            ):
                return gettext("Amount is more than %(n)s times this member's average.") % {
                    "n": _figure(limit)
                }
        elif (
            rule.kind == AbuseRule.Kind.NEW_CARDS
            and purchase.store
            and member.enrolled_at > at - timedelta(days=1)
        ):
            newcomers = (
                Purchase.objects.filter(
                    store=purchase.store,
                    occurred_at__gt=at - timedelta(days=1),
                    occurred_at__lte=at,
                    member__enrolled_at__gt=at - timedelta(days=1),
                )
                .values("member")
                .distinct()
                .count()
            )
            if newcomers > limit:
                return ngettext(
                    "More than %(n)s new member bought in this store today.",
                    "More than %(n)s new members bought in this store today.",
                    int(limit),
                ) % {"n": _figure(limit)}
    return ""


def _figure(limit: Decimal) -> int | Decimal:
    """A threshold as people write it: 5, not 5.00; 1.5 stays 1.5."""
    return int(limit) if limit == int(limit) else limit.normalize()


def _window(*, at, received, span: timedelta) -> Q:
    """Purchases in the span before `at` by their own time, or before `received` by arrival."""
    return Q(occurred_at__gt=at - span, occurred_at__lte=at) | Q(
        created_at__gt=received - span, created_at__lte=received
    )
