"""Demo members for `make run`: Dutch-flavoured names, phones, consents, a tier ladder and a few
blocked or replaced cards; deterministic."""

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from tqdm import tqdm

from members.models import Consent, Member, Tier
from members.services import card_block, card_replace, consent_withdraw, member_enrol

DEMO_DOMAIN = "demo.example.nl"

FIRST_NAMES = [
    "Daan",
    "Sem",
    "Lucas",
    "Levi",
    "Finn",
    "Milan",
    "Noah",
    "Jesse",
    "Bram",
    "Thijs",
    "Emma",
    "Julia",
    "Tess",
    "Sophie",
    "Anna",
    "Fleur",
    "Sara",
    "Noor",
    "Lotte",
    "Evi",
    "Jan",
    "Piet",
    "Kees",
    "Henk",
    "Willem",
    "Ingrid",
    "Marieke",
    "Annelies",
    "Joost",
    "Femke",
    "Ruben",
    "Mila",
    "Saar",
    "Luuk",
    "Sanne",
    "Rik",
    "Yara",
    "Mohamed",
    "Fatima",
    "Priya",
]
LAST_NAMES = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "van der Linden",
    "Kok",
    "Jacobs",
    "de Haan",
    "Vermeulen",
    "van den Heuvel",
    "van der Veen",
    "van den Broek",
    "de Bruijn",
    "de Bruin",
    "van der Heijden",
    "Schouten",
    "van Beek",
    "Willems",
    "van Vliet",
    "Yilmaz",
    "El Amrani",
    "Kaya",
]
CHANNELS = ["pos", "pos", "pos", "webshop", "webshop", "app"]


TIERS = [
    # name, rank, threshold, window months, earn multiplier, grace days, benefits
    ("Bronze", 0, 0, 12, "1.00", 0, "Collect points on every purchase."),
    ("Silver", 1, 500, 12, "1.25", 60, "25% extra points, birthday bonus."),
    ("Gold", 2, 1500, 12, "1.50", 90, "50% extra points, free delivery, early sale access."),
    ("Platinum", 3, 4000, 12, "2.00", 90, "Double points, personal shopper, free returns."),
]


def _email(first: str, last: str, index: int) -> str:
    local = f"{first}.{last}".lower().replace(" ", "")
    return f"{local}.{index}@{DEMO_DOMAIN}"


def tiers_load() -> int:
    """The Bronze-Silver-Gold-Platinum ladder, created if missing."""
    created = 0
    for name, rank, threshold, months, multiplier, grace, benefits in TIERS:
        if Tier.objects.filter(Q(name=name) | Q(rank=rank)).exists():
            continue
        Tier.objects.create(
            name=name,
            rank=rank,
            threshold=threshold,
            window_months=months,
            earn_multiplier=Decimal(multiplier),
            downgrade_grace_days=grace,
            benefits=benefits,
        )
        created += 1
    return created


def load(*, rng: random.Random, count: int = 600) -> int:
    """Enrol `count` demo members; does nothing when they exist already."""
    tiers_load()
    if Member.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").exists():
        return 0
    today = timezone.localdate()
    with transaction.atomic():
        for index in tqdm(range(count), desc="members", unit="member"):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            channel = rng.choice(CHANNELS)
            consents = [purpose for purpose in Consent.Purpose.values if rng.random() < 0.6]
            member = member_enrol(
                email=_email(first, last, index),
                first_name=first,
                last_name=last,
                external_id=f"LEG{100000 + index}",
                channel=channel,
                phone=f"+3161{index:07d}" if rng.random() < 0.8 else "",
                birth_date=today - timedelta(days=rng.randint(18 * 365, 80 * 365)),
                locale=rng.choice(["nl", "nl", "nl", "en"]),
                profile={"favourite_store": rng.choice(["Utrecht", "Amsterdam", "Rotterdam"])},
                consents=consents,
                wording_version="2026-01",
            )
            if consents and rng.random() < 0.1:
                consent_withdraw(member=member, purpose=consents[0], channel="app")
            roll = rng.random()
            if roll < 0.03:
                card_block(card=member.cards.get(), reason="lost")
            elif roll < 0.08:
                card_replace(card=member.cards.get(), reason="damaged")
    return count
