"""Demo data for `make run`, composed from each app's demo module in dependency order.

Every step is idempotent: it checks for its own rows and skips when they exist, so running
`make run` again reuses the data. Demo staff logins get the password below; they are created only
by this command, which production never runs.
"""

import random
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from ledger import demo as ledger_demo
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


def demo_load(*, stdout, members: int = 600) -> list[tuple[str, str]]:
    roles.roles_sync()
    logins = demo_users_create()
    rng = random.Random(SEED)
    loaded = members_demo.load(rng=rng, count=members)
    stdout.write(f"members: {loaded} created" if loaded else "members: already there")
    played = ledger_demo.load(rng=random.Random(SEED + 3))
    stdout.write(f"ledger: {played} events played" if played else "ledger: already there")
    from campaigns import demo as campaigns_demo

    purchases = campaigns_demo.load(rng=rng)
    stdout.write(f"purchases: {purchases} recorded" if purchases else "purchases: already there")
    from campaigns.services import segment_presets_ensure

    stdout.write(f"segments: {segment_presets_ensure()} RFM presets created")
    # Tiers follow the points: recalculated after the steps that post them (idempotent).
    from campaigns.tiers import tiers_recalculate

    tier_counts = tiers_recalculate()
    stdout.write(f"tiers: {tier_counts['upgraded']} upgraded")
    # Rewards after tiers: the catalogue's tier rules and prices follow the members' tiers.
    from rewards import demo as rewards_demo

    redeemed = rewards_demo.load(rng=random.Random(SEED + 6))
    stdout.write(f"rewards: {redeemed} redemptions" if redeemed else "rewards: already there")
    # Campaigns last: their audiences, sends and results read the members' story so far.
    from campaigns import demo_campaigns

    made = demo_campaigns.load()
    stdout.write(f"campaigns: {made} created" if made else "campaigns: already there")
    logged = _audit_demo_load()
    stdout.write(f"audit log: {logged} staff changes" if logged else "audit log: already there")
    # Finance after the history: a closed month must not move what was written before it.
    finance = ledger_demo.finance_load()
    stdout.write("finance: a closed month, a value change" if finance else "finance: already there")
    # The dashboard last: its daily rows sum up everything above (reading only).
    stdout.write(f"enrolments: {demo_enrolments_backdate()} backdated")
    stdout.write(f"dashboard: {demo_dashboard_backfill()} days computed")
    return logins


def demo_enrolments_backdate() -> int:
    """Demo members are all enrolled now but their history spans a year: move each one's
    enrolment to the day before their first ledger entry, so the dashboard's enrolments chart
    tells the same story as their points. Demo data only; does nothing the second time."""
    from django.db.models import DateTimeField, ExpressionWrapper, OuterRef, Subquery

    from ledger.models import Entry
    from members.models import Member

    first_entry = (
        Entry.objects.filter(account__member=OuterRef("pk"))
        .order_by("created_at")
        .values("created_at")[:1]
    )
    return Member.objects.filter(
        email__endswith=f"@{members_demo.DEMO_DOMAIN}", enrolled_at__gt=Subquery(first_entry)
    ).update(
        enrolled_at=ExpressionWrapper(
            Subquery(first_entry) - timedelta(days=1), output_field=DateTimeField()
        )
    )


def demo_dashboard_backfill() -> int:
    """The dashboard's daily rows over the demo's history (the year the ledger step wrote), or
    only the days due when they exist already."""
    from django.db.models import Min
    from tqdm import tqdm

    from ledger.models import Entry
    from loyalty_site.dashboard import days
    from loyalty_site.models import DashboardDay

    if DashboardDay.objects.exists():
        return days.days_refresh_due()
    first = Entry.objects.aggregate(first=Min("created_at"))["first"]
    today = days.local_today()
    since = days.local_today(first) if first else today
    since = max(since, today - timedelta(days=400))
    with tqdm(total=(today - since).days + 1, desc="dashboard", unit="day") as bar:
        return days.days_refresh(
            since=since, until=today, progress=lambda n, _total: bar.update(n - bar.n)
        )


@transaction.atomic
def _audit_demo_load() -> int:
    """A few staff changes with reasons for the audit log page (/audit/): a card replaced and a
    language corrected by the service agent, a tier's benefits edited by the administrator."""
    from auditlog.context import set_actor

    from members.models import AuditEntry, Card, Tier
    from members.services import card_replace, member_update

    User = get_user_model()
    service, admin = User.objects.get(username="service"), User.objects.get(username="admin")
    if AuditEntry.objects.filter(actor=service, action="card_replace").exists():
        return 0
    cards = list(
        Card.objects.filter(status=Card.Status.ACTIVE).select_related("member").order_by("pk")[:2]
    )
    if len(cards) < 2:
        return 0
    card_replace(card=cards[0], actor=service, reason="Card reported lost at the till")
    member_update(
        member=cards[1].member,
        actor=service,
        reason="Member asked for Dutch messages",
        locale="nl" if cards[1].member.locale != "nl" else "en",
    )
    tier = Tier.objects.order_by("rank").last()
    if tier is not None:
        with set_actor(admin):
            tier.downgrade_grace_days += 30
            tier.save()
    return 3
