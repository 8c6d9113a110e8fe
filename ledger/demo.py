"""A year of points history for the demo members, written through the services.

Each kind of history has its own generator (earns, redemptions, staff adjustments, transfers),
so a later step that derives earns from purchases can switch ``earns`` off. The events of all
kinds are played in time order with backdated times (``at=``), and the expiry run goes at each
month end, so balances, lots and expiry entries are what they would have been had the year
really happened. Idempotent: it does nothing when demo members already have ledger entries.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from ledger import errors, services
from ledger.expiry import expiry_for
from ledger.models import Entry
from members.models import Member

DEMO_DOMAIN = "demo.example.nl"
CHANNELS = ["pos", "pos", "pos", "webshop", "app"]
REWARD_COSTS = [100, 150, 250, 500, 750]
ADJUST_REASONS = [
    "Receipt not scanned at the till",
    "Goodwill: late delivery",
    "Goodwill: damaged product",
    "Double points promised by the store",
]


@dataclass(order=True)
class Event:
    at: datetime
    order: int
    kind: str = field(compare=False)
    member: Member = field(compare=False)
    points: int = field(compare=False)
    extra: dict = field(compare=False, default_factory=dict)


def _moment(rng: random.Random, start: datetime, now: datetime) -> datetime:
    return start + timedelta(seconds=rng.randint(0, int((now - start).total_seconds()) - 3600))


def earn_events(*, rng, members, start, now) -> list[Event]:
    """About 20 earns per member, 5 to 300 points; one in seven is a short-lived bonus."""
    events = []
    for member in members:
        for _ in range(rng.randint(5, 35)):
            at = _moment(rng, start, now)
            bonus = rng.random() < 0.15
            points = (
                rng.randint(20, 150) if bonus else min(300, max(5, int(rng.expovariate(1 / 45))))
            )
            extra = {"channel": rng.choice(CHANNELS), "bonus": bonus}
            if bonus:
                # Campaign bonus points expire after 90 days, so the year shows some expiry.
                extra["expires_at"] = at + timedelta(days=90)
            events.append(Event(at, len(events), "earn", member, points, extra))
    return events


def redemption_events(*, rng, members, start, now) -> list[Event]:
    events = []
    for member in members:
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 4])):
            at = _moment(rng, start + timedelta(days=60), now)
            events.append(
                Event(
                    at,
                    10**6 + len(events),
                    "redeem",
                    member,
                    rng.choice(REWARD_COSTS),
                    {"channel": rng.choice(CHANNELS)},
                )
            )
    return events


def adjustment_events(*, rng, members, start, now, count=30) -> list[Event]:
    events = []
    for _ in range(count):
        member = rng.choice(members)
        points = rng.choice([25, 50, 75, 100, 150, -20])
        events.append(
            Event(
                _moment(rng, start, now),
                2 * 10**6 + len(events),
                "adjust",
                member,
                points,
                {"reason": rng.choice(ADJUST_REASONS)},
            )
        )
    return events


def transfer_events(*, rng, members, start, now, count=8) -> list[Event]:
    events = []
    for _ in range(count):
        source, target = rng.sample(members, 2)
        events.append(
            Event(
                _moment(rng, start, now),
                3 * 10**6 + len(events),
                "transfer",
                source,
                rng.choice([50, 100, 200]),
                {"target": target},
            )
        )
    return events


def _month_ends(start: datetime, now: datetime) -> list[datetime]:
    ends, moment = [], start
    while True:
        moment = (moment.replace(day=1) + timedelta(days=32)).replace(
            day=1, hour=0, minute=0, second=0, microsecond=0
        )
        if moment >= now:
            return ends
        ends.append(moment)


def _play(event: Event, staff) -> bool:
    extra = event.extra
    try:
        if event.kind == "redeem":
            services.points_redeem(
                member=event.member,
                points=event.points,
                channel=extra["channel"],
                reference=f"demo-reward-{event.order}",
                reason_code="redemption",
                at=event.at,
            )
        elif event.kind == "adjust":
            if staff is None:
                return False
            services.points_adjust(
                member=event.member,
                points=event.points,
                reason=extra["reason"],
                actor=staff,
                at=event.at,
            )
        elif event.kind == "transfer":
            services.points_transfer(
                source=event.member,
                target=extra["target"],
                points=event.points,
                reason="Shared with family",
                channel="app",
                at=event.at,
            )
    except (errors.InsufficientPoints, errors.AccountInDebt, errors.MemberBlocked):
        return False  # A member without enough points at that moment simply did not redeem.
    return True


def _earn_item(event: Event) -> dict:
    bonus = event.extra["bonus"]
    return {
        "points": event.points,
        "at": event.at,
        "channel": event.extra["channel"],
        "reference": f"demo-{event.order}",
        "reason_code": "purchase",
        "reason_params": {"id": f"demo-{event.order}"},
        "explanation": [
            {"rule": "Campaign bonus" if bonus else "Base rate", "points": event.points}
        ],
        "expires_at": event.extra.get("expires_at"),
    }


def _member_timeline(member: Member, events: list[Event], month_ends, staff) -> int:
    """Play one member's year in time order: runs of earns in one batch, expiry at month ends."""
    played, batch, expiries = 0, [], []
    marks = [Event(end, -1, "expire", member, 0) for end in month_ends]
    for event in sorted(events + marks):
        if event.kind == "earn":
            item = _earn_item(event)
            batch.append(item)
            expiries.append(item["expires_at"] or expiry_for(event.at))
            continue
        if event.kind == "adjust" and event.points > 0:
            expiries.append(expiry_for(event.at))
        if batch:
            services.points_earn_batch(member=member, earns=batch)
            played, batch = played + len(batch), []
        if event.kind == "expire":
            # Only ask the database when a lot of this member may have expired by now.
            if any(moment is not None and moment <= event.at for moment in expiries):
                services.points_expire(now=event.at, member=member)
                expiries = [m for m in expiries if m is not None and m > event.at]
        else:
            played += _play(event, staff)
    if batch:
        services.points_earn_batch(member=member, earns=batch)
        played += len(batch)
    return played


def load(*, rng: random.Random, earns: bool = True, now: datetime | None = None) -> int:
    """Write the demo history; returns the number of events played (0 when already there)."""
    members = list(Member.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").order_by("pk"))
    if len(members) < 2:
        return 0
    if Entry.objects.filter(account__member__in=members[:50]).exists():
        return 0
    now = now or timezone.now()
    start = now - timedelta(days=365)
    # Each member's own history ends three days ago; transfers between members come after it,
    # so every entry is written in time order and "balance after" reads right.
    own_end = now - timedelta(days=3)
    staff = get_user_model().objects.filter(username="service").first()
    events = []
    if earns:
        events += earn_events(rng=rng, members=members, start=start, now=own_end)
    events += redemption_events(rng=rng, members=members, start=start, now=own_end)
    events += adjustment_events(rng=rng, members=members, start=start, now=own_end)
    by_member: dict[int, list[Event]] = {}
    for event in events:
        by_member.setdefault(event.member.pk, []).append(event)
    month_ends = _month_ends(start, own_end)
    played = 0
    with transaction.atomic():
        for member in tqdm(members, desc="ledger", unit="member"):
            played += _member_timeline(member, by_member.get(member.pk, []), month_ends, staff)
        for event in sorted(transfer_events(rng=rng, members=members, start=own_end, now=now)):
            played += _play(event, staff)
        services.points_expire(now=now)
        if staff is not None:
            # Large adjustments waiting in the approval queue for Finance.
            threshold = settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD
            for member, reason in zip(
                rng.sample(members, 2),
                ["Lost points after card replacement", "Compensation: cancelled order"],
                strict=True,
            ):
                services.points_adjust(
                    member=member,
                    points=threshold + rng.choice([250, 500]),
                    reason=reason,
                    actor=staff,
                    at=now - timedelta(hours=rng.randint(1, 48)),
                )
    return played


def finance_load(*, now: datetime | None = None) -> int:
    """Finance's demo rows, after every other app's history: the month before last closed by
    the finance user, and a change of the point value from the start of last month (so the
    page shows a closed month, a revaluation in the roll-forward and a month left to close).
    Returns the rows written (0 when already there)."""
    from decimal import Decimal

    from ledger.finance.closing import period_close
    from ledger.finance.moments import day_start
    from ledger.finance.values import point_value_change
    from ledger.models import PeriodClose

    finance = get_user_model().objects.filter(username="finance").first()
    if finance is None or PeriodClose.objects.exists() or not Entry.objects.exists():
        return 0
    now = now or timezone.now()
    this_month = timezone.localtime(now).date().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    before_last = (last_month - timedelta(days=1)).replace(day=1)
    period_close(month=before_last, actor=finance, note="Demo: month-end close", now=now)
    point_value_change(
        value=Decimal(settings.LOYALTY_POINT_VALUE) * Decimal("1.2"),
        valid_from=day_start(last_month),
        reason="Demo: new partner rate",
        actor=finance,
    )
    return 2
