"""The abuse guard: whether a purchase looks abnormal enough to wait for a person."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import Avg, Count, Sum
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
    others = Purchase.objects.filter(member=member).exclude(pk=purchase.pk)
    for rule in rules:
        limit = rule.threshold
        if rule.kind == AbuseRule.Kind.MEMBER_VELOCITY:
            count = others.filter(occurred_at__gt=at - timedelta(hours=1), occurred_at__lte=at)
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase by this member in an hour.",
                    "More than %(n)s purchases by this member in an hour.",
                    int(limit),
                ) % {"n": limit}
        elif rule.kind == AbuseRule.Kind.CARD_VELOCITY:
            # Only purchases that presented a card count; one by member id has no card.
            if purchase.card_id is None:
                continue
            count = Purchase.objects.filter(
                card_id=purchase.card_id,
                occurred_at__gt=at - timedelta(hours=1),
                occurred_at__lte=at,
            ).exclude(pk=purchase.pk)
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase with this card in an hour.",
                    "More than %(n)s purchases with this card in an hour.",
                    int(limit),
                ) % {"n": limit}
        elif rule.kind == AbuseRule.Kind.STORE_VELOCITY:
            count = others.filter(
                store=purchase.store, occurred_at__gt=at - timedelta(hours=1), occurred_at__lte=at
            )
            if count.count() + 1 > limit:
                return ngettext(
                    "More than %(n)s purchase by this member in one store in an hour.",
                    "More than %(n)s purchases by this member in one store in an hour.",
                    int(limit),
                ) % {"n": limit}
        elif rule.kind == AbuseRule.Kind.POINTS_PER_DAY:
            earned = (
                EarningAward.objects.filter(
                    member=member, occurred_at__gt=at - timedelta(days=1), occurred_at__lte=at
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
                ) % {"n": limit}
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
                    "n": limit
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
                ) % {"n": limit}
    return ""
