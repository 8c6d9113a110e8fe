"""Demo members for `make run`: Dutch-flavoured names, one card each, deterministic."""

import random

from django.db import transaction
from tqdm import tqdm

from members.models import Member
from members.services import member_enrol

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


def _email(first: str, last: str, index: int) -> str:
    local = f"{first}.{last}".lower().replace(" ", "")
    return f"{local}.{index}@{DEMO_DOMAIN}"


def load(*, rng: random.Random, count: int = 600) -> int:
    """Enrol `count` demo members; does nothing when they exist already."""
    if Member.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").exists():
        return 0
    with transaction.atomic():
        for index in tqdm(range(count), desc="members", unit="member"):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            member_enrol(
                email=_email(first, last, index),
                first_name=first,
                last_name=last,
                external_id=f"LEG{100000 + index}",
                channel=rng.choice(CHANNELS),
            )
    return count
