"""Randomised ledger histories for finance's tests, and a from-scratch recomputation.

``history_run`` drives the ledger's own services (earns, pending points and their partial or
full cancellation, redemptions, holds,
expiries, returns into debt, transfers, staff adjustments, tier changes) at increasing moments
and calls ``checkpoint(moment)`` now and then, so a test can record what a report said then.
Now and then it also posts an entry dated in the past (``at=`` earlier than the last moment
used), as imports, late uploads and the demo data do: a redemption, a debit adjustment, a
return (into debt or not) or an earn (paying a debt when there is one). Such an entry may change
what a report says of a moment after the date it asked for; it calls ``backdated(at)`` first, so
a test forgets what it recorded from ``at`` on.
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


def history_run(
    seed: int, *, steps: int = 80, members: int = 4, checkpoint=None, backdated=None
) -> datetime:
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
            + ["cancel"]
            + ["backdated"] * 3
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
            elif action == "cancel":
                # A return inside the return window: part or all of the pending points.
                open_pending = list(
                    PendingEarn.objects.filter(account=account, status="pending").order_by("id")
                )
                if open_pending:
                    pending = rng.choice(open_pending)
                    services.pending_cancel(
                        pending=pending, points=rng.randint(1, pending.points), at=now
                    )
            elif action == "backdated":
                # Before the newest lot, often: what made a roll-forward not close (issue 15).
                at = now - timedelta(hours=rng.choice([2, 30, 300]), seconds=rng.randrange(60))
                if backdated is not None:
                    backdated(at)
                _backdated_post(rng, member, account, earns, staff, at)
        except DomainError:
            pass  # A refusal (in debt, short) writes nothing; the history goes on.
        if checkpoint is not None and rng.random() < 0.15:
            checkpoint(now)
    return now


def _backdated_post(rng, member, account, earns, staff, at) -> None:
    kind = rng.choice(["redeem", "adjust", "reverse", "earn"])
    if account.balance < 0:
        kind = "earn"  # only an earn (it pays the debt first) or another return is possible
    if kind == "redeem" and account.available > 0:
        services.points_redeem(member=member, points=rng.randint(1, account.available), at=at)
    elif kind == "adjust" and account.available > 0:
        services.points_adjust(
            member=member,
            points=-rng.randint(1, account.available),
            reason="goodwill taken back",
            actor=staff,
            at=at,
        )
    elif kind == "reverse" and earns:
        entry = rng.choice(earns)
        services.points_reverse(entry=entry, reason="late return", at=at)
        earns.remove(entry)
    else:
        earns.append(services.points_earn(member=member, points=rng.randint(1, 400), at=at))


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
    """From the entries alone: what each lot held at ``as_of``, grouped like the report.

    The entries are replayed in the order they were posted (id), which is what decided the lots
    each debit took: an earn forms its lot (the part a debt takes goes at once), an expiry takes
    its own lot, every other debit the oldest open lots (by their earn's date). A point taken
    from a lot counts as gone from the debit's own date; a lot exists from its earn's date. At
    every moment what the lots held must be the positive balance then (the sum of the entries
    dated up to it): a debit dated before a lot it takes from breaks that.
    """
    months, tiers = defaultdict(int), defaultdict(int)
    balances, debt_members = 0, 0
    lots = {lot.entry_id: lot for lot in Lot.objects.all()}
    for account in Account.objects.select_related("member"):
        remaining, taken, earned = {}, defaultdict(int), {}
        balance, balance_then = 0, 0
        for entry in Entry.objects.filter(account=account).order_by("id"):
            dated = entry.created_at <= as_of
            if entry.amount > 0:
                lot = lots[entry.pk]
                debt = min(max(0, -balance), entry.amount)
                remaining[lot.pk] = entry.amount - debt
                earned[lot.pk] = (entry.created_at, lot)
                if dated:
                    taken[lot.pk] += debt
            else:
                need = -entry.amount
                if entry.kind == Entry.Kind.EXPIRE:
                    order = [int(entry.reference.removeprefix("lot:"))]
                else:
                    order = sorted(remaining, key=lambda pk: (earned[pk][0], pk))
                for pk in order:
                    take = min(remaining[pk], need)
                    remaining[pk] -= take
                    need -= take
                    if dated:
                        taken[pk] += take
            balance += entry.amount
            balance_then += entry.amount if dated else 0
        tier = tier_at(account.member, as_of)
        held = 0
        for pk, (at, lot) in earned.items():
            left = lot.points - taken[pk] if at <= as_of else 0
            if left:
                months[_month(lot.expires_at)] += left
                tiers[tier] += left
                held += left
        assert held == max(balance_then, 0), (account.pk, as_of)
        balances += held
        debt_members += balance_then < 0
    return {
        "points": balances,
        "months": {k: v for k, v in months.items() if v},
        "tiers": {k: v for k, v in tiers.items() if v},
        "debt_members": debt_members,
    }


def pending_open() -> int:
    return sum(PendingEarn.objects.filter(status="pending").values_list("points", flat=True))
