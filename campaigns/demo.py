"""Demo earning rules, engagement kinds, challenges and a year of purchases for `make run`.

Purchases go through `purchase_record` (backdated), so the demo ledger holds real explanations,
challenge progress, badges and referral rewards. Idempotent: skips when its rules exist.
"""

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from campaigns.models import AbuseRule, Badge, Challenge, EarningRule, EngagementKind
from campaigns.services import (
    event_record,
    purchase_record,
    referral_code_for,
    referral_register,
)
from members.models import Member

DEMO_DOMAIN = "demo.example.nl"
BASE_RULE = "Base rate: 1 point per euro"

# (sku, category, price)
PRODUCTS = [
    ("KOF-250", "coffee", "4.29"),
    ("KOF-BONEN-1KG", "coffee", "12.99"),
    ("THEE-GROEN", "tea", "2.49"),
    ("MELK-1L", "dairy", "1.19"),
    ("KAAS-JONG", "dairy", "6.49"),
    ("YOGHURT", "dairy", "1.89"),
    ("BROOD-VOLKOREN", "bakery", "2.59"),
    ("CROISSANT-4", "bakery", "2.99"),
    ("APPELS-1KG", "produce", "2.29"),
    ("TOMATEN", "produce", "1.99"),
    ("WASMIDDEL", "household", "9.99"),
    ("WIJN-ROOD", "drinks", "7.49"),
]
STORES = ["AMS-01", "AMS-02", "UTR-01", "RTM-01", "EIN-01"]
CHANNELS = ["pos", "pos", "pos", "webshop", "app"]


def rules_load() -> None:
    EarningRule.objects.create(name=BASE_RULE, rate=Decimal(1), rounding="down")
    EarningRule.objects.create(
        name="Double points on coffee",
        kind=EarningRule.Kind.MULTIPLIER,
        multiplier=Decimal(2),
        categories=["coffee"],
        priority=10,
        stacks=False,
    )
    EarningRule.objects.create(
        name="Weekend bonus",
        kind=EarningRule.Kind.BONUS,
        bonus_points=25,
        days_of_week=[5, 6],
        min_spend=Decimal(20),
        cap_per_member=100,
        cap_period="month",
    )
    EarningRule.objects.create(
        name="Birthday bonus", kind=EarningRule.Kind.BONUS, bonus_points=100, birthday=True
    )
    kinds = [
        ("review", "Product review", 50, 5, "month", True),
        ("survey", "Survey answered", 25, 2, "month", False),
        ("social_share", "Social share", 10, 3, "week", False),
        ("app_download", "App downloaded", 100, 1, "ever", False),
        ("profile_completed", "Profile completed", 50, 1, "ever", False),
        ("birthday", "Birthday", 0, 1, "year", False),
        ("referral", "Referral that led to a first purchase", 250, None, "day", False),
    ]
    for code, name, points, limit, period, approval in kinds:
        EngagementKind.objects.create(
            code=code,
            name=name,
            points=points,
            limit_count=limit,
            limit_period=period,
            requires_approval=approval,
            collects_nps=code == "survey",
        )
    regular = Badge.objects.create(
        code="regular", name="Regular", description="Three purchases within thirty days."
    )
    Badge.objects.create(code="coffee-lover", name="Coffee lover")
    Challenge.objects.create(
        name="3 purchases in 30 days",
        goal=Challenge.Goal.PURCHASE_COUNT,
        target=Decimal(3),
        window_days=30,
        reward_points=150,
        badge=regular,
    )
    Challenge.objects.create(
        name="Spend 100 on coffee in a month",
        goal=Challenge.Goal.SPEND,
        category="coffee",
        target=Decimal(100),
        window_days=31,
        reward_points=200,
        badge=Badge.objects.get(code="coffee-lover"),
    )
    AbuseRule.objects.create(kind=AbuseRule.Kind.MEMBER_VELOCITY, threshold=Decimal(5))
    AbuseRule.objects.create(kind=AbuseRule.Kind.POINTS_PER_DAY, threshold=Decimal(5000))


def _lines(rng: random.Random) -> list[dict]:
    lines = []
    for sku, category, price in rng.sample(PRODUCTS, rng.randint(1, 5)):
        quantity = rng.randint(1, 3)
        lines.append(
            {
                "sku": sku,
                "category": category,
                "quantity": quantity,
                "amount": Decimal(price) * quantity,
            }
        )
    return lines


@transaction.atomic
def load(*, rng: random.Random, purchases_per_member: tuple[int, int] = (6, 9)) -> int:
    """Create the demo rules and a year of purchases; returns how many purchases it recorded."""
    if EarningRule.objects.filter(name=BASE_RULE).exists():
        return 0
    rules_load()
    members = list(Member.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").order_by("pk"))
    now = timezone.now()
    # A few members came in through a friend's referral code before they first bought.
    # Referrers from the first half, referred from the second, so nobody refers themselves.
    pairs = min(20, len(members) // 2)
    for referrer, referred in zip(members[:pairs], members[len(members) - pairs :], strict=True):
        referral_register(referred=referred, code=referral_code_for(member=referrer).code)

    recorded = 0
    for member in tqdm(members, desc="demo purchases", unit="member", leave=False):
        if rng.random() < 0.3:
            continue  # Not every member is active.
        # Demo members may all have been enrolled just now; their story still spans a year.
        start = min(max(member.enrolled_at, now - timedelta(days=365)), now - timedelta(days=60))
        span = max(int((now - start).total_seconds()), 3600)
        count = rng.randint(*purchases_per_member)
        times = sorted(start + timedelta(seconds=rng.randrange(span)) for _ in range(count))
        for i, at in enumerate(times):
            at = at.replace(hour=rng.randint(8, 20))
            if at > now:
                at = now - timedelta(minutes=rng.randint(1, 600))
            lines = _lines(rng)
            purchase_record(
                member=member,
                channel=rng.choice(CHANNELS),
                external_id=f"DEMO-{member.pk}-{i}",
                amount=sum((line["amount"] for line in lines), Decimal(0)),
                currency="EUR",
                occurred_at=at,
                store=rng.choice(STORES),
                lines=lines,
                backdate=True,
            )
            recorded += 1
        if rng.random() < 0.25:
            # The survey asks for the NPS score: more promoters than detractors, as in a
            # programme people chose to join.
            score = rng.choices(range(11), weights=[1, 1, 1, 1, 2, 3, 4, 8, 10, 12, 9])[0]
            event_record(
                member=member,
                kind="survey",
                reference=f"DEMO-S-{member.pk}",
                score=score,
                at=times[-1],
            )
        if rng.random() < 0.15:
            # Reviews wait for moderation: a queue for customer service to work.
            event_record(member=member, kind="review", reference=f"DEMO-R-{member.pk}")
        if rng.random() < 0.2:
            event_record(member=member, kind="app_download", reference="app")
    # A burst of purchases on one card trips the velocity guard: the review queue has work.
    burst_member = members[len(members) // 2]
    for i in range(7):
        lines = _lines(rng)
        purchase_record(
            member=burst_member,
            channel="pos",
            external_id=f"DEMO-BURST-{i}",
            amount=sum((line["amount"] for line in lines), Decimal(0)),
            currency="EUR",
            occurred_at=now - timedelta(hours=3) + timedelta(minutes=5 * i),
            store=STORES[0],
            lines=lines,
            backdate=True,
        )
        recorded += 1
    return recorded
