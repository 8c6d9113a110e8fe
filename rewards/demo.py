"""Demo catalogue for `make run`: Dutch-retail rewards, voucher pools and a year of redemptions.

Redemptions go through the services with backdated times, only for members who have the points
now (the ledger and purchase steps ran before this one), so balances stay true. Idempotent: it
does nothing when the demo catalogue exists.
"""

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from ledger.selectors import debit_dated_from
from loyalty_site.errors import DomainError
from members.models import Member, Tier
from rewards import services
from rewards.models import Reward
from rewards.selectors import rewards_available

DEMO_DOMAIN = "demo.example.nl"
ALL = []
TILL, WEB, APP, PARTNER = "pos", "webshop", "app", "partner"

# (kind, English, Dutch, points, stock, limit, channels, tiers from rank index, description)
CATALOGUE = [
    (
        "voucher",
        "€5 discount",
        "€5 korting",
        500,
        None,
        None,
        ALL,
        0,
        "€5 off your next purchase of €25 or more.",
    ),
    (
        "voucher",
        "€10 discount",
        "€10 korting",
        950,
        None,
        None,
        ALL,
        0,
        "€10 off your next purchase of €50 or more.",
    ),
    (
        "voucher",
        "€25 discount",
        "€25 korting",
        2250,
        None,
        2,
        ALL,
        1,
        "€25 off a purchase of €100 or more. For Silver members and up.",
    ),
    (
        "voucher",
        "Free coffee",
        "Gratis koffie",
        150,
        None,
        4,
        [TILL, APP],
        0,
        "A cappuccino, latte or filter coffee at our in-store café.",
    ),
    (
        "voucher",
        "Free apple pie",
        "Gratis appeltaart",
        250,
        None,
        2,
        [TILL],
        0,
        "A slice of Dutch apple pie with whipped cream.",
    ),
    (
        "voucher",
        "Free delivery",
        "Gratis bezorging",
        200,
        None,
        None,
        [WEB, APP],
        0,
        "No delivery costs on your next online order.",
    ),
    (
        "voucher",
        "10% off one item",
        "10% korting op één artikel",
        300,
        None,
        3,
        ALL,
        0,
        "Ten percent off any single item, sale items excluded.",
    ),
    (
        "voucher",
        "Pathé cinema ticket",
        "Pathé-bioscoopkaartje",
        1200,
        None,
        None,
        ALL,
        0,
        "One 2D film ticket at any Pathé cinema in the Netherlands.",
    ),
    (
        "product",
        "Tote bag",
        "Draagtas",
        750,
        120,
        2,
        ALL,
        0,
        "Sturdy organic-cotton tote bag with our logo.",
    ),
    (
        "product",
        "Stainless steel water bottle",
        "RVS-drinkfles",
        1100,
        60,
        1,
        ALL,
        0,
        "Keeps drinks cold for 24 hours, 750 ml.",
    ),
    (
        "product",
        "Umbrella",
        "Paraplu",
        1500,
        40,
        1,
        ALL,
        0,
        "Storm-proof umbrella for the Dutch weather.",
    ),
    (
        "product",
        "Stroopwafel gift box",
        "Stroopwafel-cadeaudoos",
        600,
        200,
        None,
        ALL,
        0,
        "Twelve fresh Gouda stroopwafels in a tin.",
    ),
    (
        "product",
        "Kitchen knife set",
        "Messenset",
        4000,
        15,
        1,
        ALL,
        2,
        "Three-piece chef's knife set. For Gold members.",
    ),
    (
        "product",
        "Bluetooth speaker",
        "Bluetooth-speaker",
        6500,
        8,
        1,
        ALL,
        2,
        "Waterproof portable speaker. For Gold members.",
    ),
    (
        "product",
        "Picnic blanket",
        "Picknickkleed",
        1800,
        30,
        1,
        ALL,
        0,
        "Summer special: waterproof picnic blanket.",
    ),
    (
        "product",
        "Christmas hamper",
        "Kerstpakket",
        3500,
        50,
        1,
        ALL,
        0,
        "A festive hamper full of Dutch delicacies.",
    ),
    (
        "donation",
        "Donate to the Dutch Cancer Society",
        "Doneer aan KWF Kankerbestrijding",
        500,
        None,
        None,
        ALL,
        0,
        "We turn your 500 points into a €5 donation to KWF.",
    ),
    (
        "donation",
        "Donate to the food bank",
        "Doneer aan de Voedselbank",
        250,
        None,
        None,
        ALL,
        0,
        "Your points buy groceries for a family in need.",
    ),
    (
        "donation",
        "Plant a tree",
        "Plant een boom met Trees for All",
        300,
        None,
        None,
        ALL,
        0,
        "Trees for All plants a tree in a Dutch or foreign forest.",
    ),
    (
        "donation",
        "Donate to Het Vergeten Kind",
        "Doneer aan Het Vergeten Kind",
        500,
        None,
        None,
        ALL,
        0,
        "Support children who grow up in difficult circumstances.",
    ),
    (
        "partner",
        "500 Flying Blue Miles",
        "500 Flying Blue Miles",
        2000,
        None,
        None,
        [WEB, APP, PARTNER],
        0,
        "Miles credited to your Flying Blue account within 5 days.",
    ),
    (
        "partner",
        "NS day return discount",
        "NS dagretour-korting",
        1400,
        None,
        2,
        [WEB, APP, PARTNER],
        0,
        "40% off an off-peak day return with NS.",
    ),
    (
        "partner",
        "€10 off a Museumkaart",
        "€10 korting op de Museumkaart",
        900,
        None,
        1,
        [WEB, APP, PARTNER],
        0,
        "Visit 500 museums for a year.",
    ),
    (
        "partner",
        "Rijksmuseum ticket",
        "Toegangskaart Rijksmuseum",
        1900,
        100,
        1,
        ALL,
        1,
        "Entry to the Rijksmuseum in Amsterdam. Silver members and up.",
    ),
    (
        "partner",
        "Efteling day ticket",
        "Efteling-dagkaart",
        3800,
        25,
        1,
        ALL,
        1,
        "A day at the Efteling theme park. Silver members and up.",
    ),
]
STREETS = ["Kerkstraat", "Dorpsstraat", "Molenweg", "Stationsweg", "Julianalaan", "Beukenlaan"]
CITIES = [
    ("Amsterdam", "1012"),
    ("Rotterdam", "3011"),
    ("Utrecht", "3511"),
    ("Den Haag", "2511"),
    ("Eindhoven", "5611"),
    ("Groningen", "9711"),
    ("Zwolle", "8011"),
]


def _address(rng: random.Random) -> str:
    city, postcode = rng.choice(CITIES)
    letters = rng.choice("ABCDEGHJKLMNPRSTVWXZ") + rng.choice("ABCDEGHJKLMNPRSTVWXZ")
    return f"{rng.choice(STREETS)} {rng.randint(1, 180)}\n{postcode} {letters}  {city.upper()}"


def catalogue_create(*, now: datetime) -> list[Reward]:
    tiers = list(Tier.objects.order_by("rank"))
    rewards = []
    for order, row in enumerate(CATALOGUE):
        kind, name_en, name_nl, points, stock, limit, channels, min_tier, description = row
        reward = Reward.objects.create(
            kind=kind,
            name_en=name_en,
            name_nl=name_nl,
            description_en=description,
            points=points,
            stock=stock,
            limit_per_member=limit,
            channels=channels,
            sort_order=order,
        )
        if min_tier and len(tiers) > min_tier:
            reward.visible_tiers.set(tiers[min_tier:])
        if tiers and kind == "voucher" and points >= 900:
            # The top tier pays 20% less for the bigger vouchers.
            reward.tier_prices.create(tier=tiers[-1], points=int(points * 0.8))
        if name_en == "Picnic blanket":
            reward.valid_from, reward.valid_until = (
                now - timedelta(days=200),
                now - timedelta(days=90),
            )
            reward.save(update_fields=["valid_from", "valid_until"])
        if name_en == "Christmas hamper":
            reward.valid_from = now + timedelta(days=5)
            reward.save(update_fields=["valid_from"])
        if reward.gives_code:
            services.voucher_codes_generate(
                reward=reward, count=300, expires_at=now + timedelta(days=365)
            )
        rewards.append(reward)
    return rewards


def _redeem(*, rng, member, reward, at, now):
    channel = rng.choice(reward.channels or [TILL, TILL, WEB, APP])
    redemption = services.redemption_redeem(
        member=member,
        reward=reward,
        channel=channel,
        reference=f"DEMO-{member.pk}-{reward.pk}-{at:%Y%m%d}",
        shipping_address=_address(rng) if reward.ships else "",
        now=at,
    )
    age = now - at
    if reward.ships:
        if age > timedelta(days=3):
            services.fulfilment_set(
                redemption=redemption, status="shipped", now=at + timedelta(days=2)
            )
        if age > timedelta(days=14):
            services.fulfilment_set(
                redemption=redemption, status="delivered", now=at + timedelta(days=4)
            )
            if rng.random() < 0.04:
                services.fulfilment_set(
                    redemption=redemption, status="returned", now=at + timedelta(days=12)
                )
    if reward.gives_code and age > timedelta(days=2) and rng.random() < 0.65:
        services.voucher_use(
            code=redemption.voucher_code.code,
            channel=channel,
            now=at + timedelta(days=rng.randint(1, min(30, age.days))),
        )
    return redemption


def load(*, rng: random.Random, share: float = 0.45) -> int:
    """Create the catalogue and redemptions; returns how many redemptions it made."""
    if Reward.objects.filter(name_en=CATALOGUE[0][1]).exists():
        return 0
    now = timezone.now()
    made = 0
    with transaction.atomic():
        catalogue_create(now=now)
        members = list(
            Member.objects.filter(
                email__endswith=f"@{DEMO_DOMAIN}", status=Member.Status.ACTIVE
            ).order_by("pk")
        )
        for member in tqdm(members, desc="demo redemptions", unit="member", leave=False):
            if rng.random() > share:
                continue
            # The ledger step backdates a year of history for every demo member, whatever their
            # enrolment date says, so their redemptions spread over the same year.
            start = now - timedelta(days=365)
            for _ in range(rng.randint(1, 3)):
                # Only what the member may see and afford right now: the points are real.
                choices = rewards_available(member=member)
                if not choices:
                    break
                reward = rng.choice(choices)
                # Dated after the points it spends (the newest lot it takes from): earlier, the
                # ledger would move the entry (a "dated_after_lot" note) and the redemption row
                # would keep a date its points disagree with.
                cost = services.reward_cost(reward=reward, member=member)
                earliest = debit_dated_from(member=member, points=cost)
                if earliest is None or earliest >= now - timedelta(hours=3):
                    break
                earliest = max(earliest, start)
                at = earliest + timedelta(
                    seconds=rng.randrange(int((now - earliest).total_seconds()) - 3600)
                )
                if reward.ships and rng.random() < 0.3:
                    # Some recent parcels, so that the shipping list has work in it.
                    at = max(earliest, now - timedelta(hours=rng.randint(2, 240)))
                try:
                    if rng.random() < 0.06:
                        reservation = services.redemption_reserve(
                            member=member, reward=reward, now=at
                        )
                        services.redemption_cancel(
                            redemption=reservation, now=at + timedelta(minutes=3)
                        )
                        continue
                    _redeem(rng=rng, member=member, reward=reward, at=at, now=now)
                    made += 1
                except DomainError:
                    # A reward not yet valid at that moment, or sold out: they chose another day.
                    continue
    return made
