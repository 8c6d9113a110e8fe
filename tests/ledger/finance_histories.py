"""Randomised ledger histories for finance's tests, and a from-scratch recomputation.

``history_run`` drives the ledger's own services (earns, pending points, redemptions, holds,
expiries, returns into debt, transfers, staff adjustments, tier changes) at increasing moments
and calls ``checkpoint(moment)`` now and then, so a test can record what a report said then.
``recompute`` rebuilds, from the entries alone, what each lot held at a moment.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta

from django.utils import timezone

from ledger import services
from ledger.models import Account, Entry, Hold, Lot, PendingEarn
from loyalty_site.errors import DomainError
from members.models import Member, Tier, TierHistory
from members.services.tiers import member_tier_set
from tests.factories import MemberFactory, UserFactory

START = datetime(2025, 1, 10, 9, 0, tzinfo=timezone.get_fixed_timezone(0))


def tiers_make() -> list[Tier]:
    return [
        Tier.objects.get_or_create(name="Silver", defaults={"rank": 1, "threshold": 0})[0],
        Tier.objects.get_or_create(name="Gold", defaults={"rank": 2, "threshold": 500})[0],
    ]


def history_run(seed: int, *, steps: int = 80, members: int = 4, checkpoint=None) -> datetime:
    """Run a random history; returns the last moment used."""
    rng = random.Random(seed)
    tiers = tiers_make()
    people = [MemberFactory() for _ in range(members)]
    staff = UserFactory()
    earns: list[Entry] = []
    holds: list[Hold] = []
    now = START
    for _ in range(steps):
        now += timedelta(hours=rng.choice([1, 5, 20, 50, 200]), seconds=rng.randrange(60))
        member = rng.choice(people)
        account = services.posting.account_for(member)
        account.refresh_from_db()
        action = rng.choice(
            ["earn"] * 5
            + ["redeem", "reverse", "transfer", "adjust", "expire", "tier", "hold", "pending"]
        )
        try:
            if action == "earn":
                earns.append(
                    services.points_earn(member=member, points=rng.randint(1, 400), at=now)
                )
            elif action == "redeem" and account.available > 0:
                services.points_redeem(
                    member=member, points=rng.randint(1, account.available), at=now
                )
            elif action == "reverse" and earns:
                entry = rng.choice(earns)
                services.points_reverse(entry=entry, reason="return", at=now)
                earns.remove(entry)
            elif action == "transfer" and account.available > 0:
                target = rng.choice([p for p in people if p != member])
                services.points_transfer(
                    source=member,
                    target=target,
                    points=rng.randint(1, account.available),
                    reason="household",
                    at=now,
                )
            elif action == "adjust":
                points = rng.choice([rng.randint(1, 300), -rng.randint(1, 300)])
                if points > 0 or account.available >= -points:
                    services.points_adjust(
                        member=member, points=points, reason="goodwill", actor=staff, at=now
                    )
            elif action == "expire":
                services.points_expire(now=now)
            elif action == "tier":
                member_tier_set(
                    member=Member.objects.get(pk=member.pk),
                    tier=rng.choice(tiers + [None]),
                    reason=TierHistory.Reason.QUALIFIED,
                    at=now,
                )
            elif action == "hold":
                open_holds = [h for h in holds if h.status == Hold.Status.OPEN]
                if open_holds and rng.random() < 0.6:
                    hold = rng.choice(open_holds)
                    if rng.random() < 0.5:
                        services.hold_void(hold=hold, at=now)
                    else:
                        services.hold_post(hold=hold, at=now)
                elif account.available > 0 and account.balance >= 0:
                    holds.append(
                        services.hold_place(
                            member=member,
                            points=rng.randint(1, account.available),
                            at=now,
                            expires_at=now + timedelta(days=30),
                        )
                    )
            elif action == "pending":
                services.points_earn(
                    member=member,
                    points=rng.randint(1, 200),
                    at=now,
                    pending_until=now + timedelta(hours=30),
                )
                services.points_mature(now=now)
        except DomainError:
            pass  # A refusal (in debt, short) writes nothing; the history goes on.
        if checkpoint is not None and rng.random() < 0.15:
            checkpoint(now)
    return now


def _month(moment: datetime | None):
    return None if moment is None else timezone.localtime(moment).date().replace(day=1)


def tier_at(member: Member, as_of: datetime) -> int | None:
    history = sorted(TierHistory.objects.filter(member=member), key=lambda h: (h.at, h.id))
    before = [h for h in history if h.at <= as_of]
    if before:
        return before[-1].to_tier_id
    if history:
        return history[0].from_tier_id
    return member.tier_id


def recompute(as_of: datetime) -> dict:
    """From the entries alone: what each lot held at ``as_of`` (debt first, expiry takes its own
    lot, every other debit the oldest lots), grouped like the report."""
    months, tiers = defaultdict(int), defaultdict(int)
    balances, debt_members = 0, 0
    lots = {lot.entry_id: lot for lot in Lot.objects.all()}
    for account in Account.objects.select_related("member"):
        held, balance = {}, 0
        entries = Entry.objects.filter(account=account, created_at__lte=as_of).order_by(
            "created_at", "id"
        )
        for entry in entries:
            if entry.amount > 0:
                lot = lots[entry.pk]
                held[lot.pk] = [lot, entry.amount - min(max(0, -balance), entry.amount)]
            else:
                need = -entry.amount
                if entry.kind == Entry.Kind.EXPIRE:
                    order = [held[int(entry.reference.removeprefix("lot:"))]]
                else:
                    order = sorted(held.values(), key=lambda item: (item[0].earned_at, item[0].pk))
                for item in order:
                    take = min(item[1], need)
                    item[1] -= take
                    need -= take
            balance += entry.amount
        tier = tier_at(account.member, as_of)
        for lot, left in held.values():
            if left:
                months[_month(lot.expires_at)] += left
                tiers[tier] += left
        assert sum(left for _lot, left in held.values()) == max(balance, 0)
        balances += max(balance, 0)
        debt_members += balance < 0
    return {
        "points": balances,
        "months": {k: v for k, v in months.items() if v},
        "tiers": {k: v for k, v in tiers.items() if v},
        "debt_members": debt_members,
    }


def pending_open() -> int:
    return sum(PendingEarn.objects.filter(status="pending").values_list("points", flat=True))
