"""Demo data for `make run`, composed from each app's demo module in dependency order.

Every step is idempotent: it checks for its own rows and skips when they exist, so running
`make run` again reuses the data. Demo staff logins get the password below; they are created only
by this command, which production never runs.
"""

import random

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from loyalty_site import roles
from members import demo as members_demo

DEMO_PASSWORD = "loyalty-demo"
DEMO_USERS = [
    ("marketing", "Mirjam", "Marketing", roles.MARKETING),
    ("service", "Sven", "Service", roles.CUSTOMER_SERVICE),
    ("finance", "Femke", "Finance", roles.FINANCE),
    ("admin", "Arjen", "Admin", roles.ADMINISTRATOR),
]
SEED = 20261127


@transaction.atomic
def demo_users_create() -> list[tuple[str, str]]:
    User = get_user_model()
    logins = []
    for username, first, last, role in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"first_name": first, "last_name": last, "is_staff": True},
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.set([Group.objects.get(name=role)])
        logins.append((username, role))
    return logins


def demo_load(*, stdout) -> list[tuple[str, str]]:
    roles.roles_sync()
    logins = demo_users_create()
    rng = random.Random(SEED)
    loaded = members_demo.load(rng=rng)
    stdout.write(f"members: {loaded} created" if loaded else "members: already there")
    return logins
