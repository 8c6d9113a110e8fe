"""The services against a tiny in-memory model of balances, lots, holds and debt."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from ledger import errors, services
from ledger.models import Account, Entry
from ledger.selectors import account_mismatches, accounts_with_totals, balance_summary
from loyalty_site.errors import DomainError
from tests.factories import MemberFactory

START = datetime(2026, 1, 1, tzinfo=UTC)


class LedgerMachine(RuleBasedStateMachine):
    """Model: per member a list of lots [expires_day, remaining], a balance, open holds."""

    earns = Bundle("earns")
    holds = Bundle("holds")

    def __init__(self):
        super().__init__()
        self.members = [MemberFactory() for _ in range(3)]
        self.balance = [0, 0, 0]
        self.lots = [[], [], []]  # [expires_day, remaining, earn_entry_pk], in earn order
        self.held = [0, 0, 0]
        self.open_holds = {}
        self.reversed = {}
        self.day = 0

    def _now(self):
        return START + timedelta(days=self.day, hours=1)

    def _take(self, who, points):
        for lot in self.lots[who]:
            take = min(lot[1], points)
            lot[1] -= take
            points -= take

    @rule(target=earns, who=st.integers(0, 2), points=st.integers(1, 200), life=st.integers(1, 30))
    def earn(self, who, points, life):
        entry = services.points_earn(
            member=self.members[who],
            points=points,
            at=self._now(),
            expires_at=START + timedelta(days=self.day + life),
        )
        debt = max(0, -self.balance[who])
        self.balance[who] += points
        self.lots[who].append([self.day + life, max(0, points - debt)])
        return (who, entry.pk, points)

    @rule(who=st.integers(0, 2), points=st.integers(1, 300))
    def redeem(self, who, points):
        try:
            services.points_redeem(member=self.members[who], points=points, at=self._now())
        except errors.AccountInDebt:
            assert self.balance[who] < 0
        except errors.InsufficientPoints:
            assert self.balance[who] - self.held[who] < points
        else:
            assert self.balance[who] >= 0 and self.balance[who] - self.held[who] >= points
            self.balance[who] -= points
            self._take(who, points)

    @rule(source=st.integers(0, 2), dest=st.integers(0, 2), points=st.integers(1, 150))
    def transfer(self, source, dest, points):
        target = dest
        if source == target:
            return
        try:
            services.points_transfer(
                source=self.members[source],
                target=self.members[target],
                points=points,
                reason="gift",
                at=self._now(),
            )
        except (errors.AccountInDebt, errors.InsufficientPoints):
            assert self.balance[source] < 0 or self.balance[source] - self.held[source] < points
            return
        # The moved points keep the soonest expiry of the lots they come from.
        need, soonest = points, None
        for lot_day, remaining in self.lots[source]:
            if remaining <= 0:
                continue
            soonest = lot_day if soonest is None else min(soonest, lot_day)
            need -= remaining
            if need <= 0:
                break
        self.balance[source] -= points
        self._take(source, points)
        debt = max(0, -self.balance[target])
        self.balance[target] += points
        self.lots[target].append([soonest if soonest is not None else 10**6, max(0, points - debt)])

    @rule(earn=earns, points=st.integers(1, 100))
    def reverse(self, earn, points):
        who, pk, size = earn
        left = size - self.reversed.get(pk, 0)
        try:
            services.points_reverse(
                entry=Entry.objects.get(pk=pk), points=points, reason="return", at=self._now()
            )
        except DomainError as exc:
            assert exc.code == "reverse_exceeds_entry" and points > left
            return
        assert points <= left
        self.reversed[pk] = self.reversed.get(pk, 0) + points
        self.balance[who] -= points
        self._take(who, points)

    @rule(target=holds, who=st.integers(0, 2), points=st.integers(1, 100))
    def hold(self, who, points):
        try:
            hold = services.hold_place(member=self.members[who], points=points, at=self._now())
        except (errors.AccountInDebt, errors.InsufficientPoints):
            assert self.balance[who] < 0 or self.balance[who] - self.held[who] < points
            return None
        self.held[who] += points
        self.open_holds[hold.pk] = (who, points)
        return hold

    @rule(hold=holds, post=st.booleans())
    def resolve(self, hold, post):
        if hold is None:
            return
        try:
            if post:
                services.hold_post(hold=hold, at=self._now())
            else:
                services.hold_void(hold=hold, at=self._now())
        except errors.HoldNotOpen:
            assert hold.pk not in self.open_holds
            return
        except errors.InsufficientPoints:
            assert post and self.balance[self.open_holds[hold.pk][0]] < hold.points
            return
        who, points = self.open_holds.pop(hold.pk)
        self.held[who] -= points
        if post:
            self.balance[who] -= points
            self._take(who, points)

    @rule(days=st.integers(1, 20))
    def time_passes_and_expiry_runs(self, days):
        self.day += days
        services.points_expire(now=START + timedelta(days=self.day))
        for who in range(3):
            expirable = self.balance[who] - self.held[who]
            for lot in self.lots[who]:
                if lot[0] <= self.day and lot[1] > 0 and expirable > 0:
                    take = min(lot[1], expirable)
                    lot[1] -= take
                    self.balance[who] -= take
                    expirable -= take

    @invariant()
    def balances_match_the_model(self):
        for who, member in enumerate(self.members):
            summary = balance_summary(member=member)
            assert summary["balance"] == self.balance[who]
            assert summary["held"] == self.held[who]
            assert summary["available"] == self.balance[who] - self.held[who]
            remaining = sum(lot[1] for lot in self.lots[who])
            assert remaining == max(0, self.balance[who])

    @precondition(lambda self: self.day % 3 == 0)
    @invariant()
    def ledger_reconciles(self):
        assert all(not account_mismatches(a) for a in accounts_with_totals())
        assert Account.objects.count() <= 3


@pytest.mark.django_db
@pytest.mark.slow
def test_ledger_state_machine():
    LedgerMachine.TestCase.settings = settings(
        max_examples=30,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    from django.db import transaction

    # Each example runs in a savepoint that is rolled back, so examples start from nothing.
    class Isolated(LedgerMachine):
        def __init__(self):
            self._atomic = transaction.atomic()
            self._atomic.__enter__()
            super().__init__()

        def teardown(self):
            transaction.set_rollback(True)
            self._atomic.__exit__(None, None, None)

    Isolated.TestCase.settings = LedgerMachine.TestCase.settings
    Isolated.TestCase().runTest()
