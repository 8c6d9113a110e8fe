from datetime import UTC, datetime, timedelta

import pytest

from ledger import errors, services
from ledger.models import Entry, Lot
from ledger.selectors import balance_summary, entries_for
from loyalty_site.errors import DomainError
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_earn_and_redeem_keep_balance_entries_and_lots(assert_reconciled):
    member = MemberFactory()
    services.points_earn(member=member, points=100, channel="pos", at=T0)
    services.points_earn(member=member, points=50, channel="pos", at=T0 + timedelta(days=1))
    entry = services.points_redeem(member=member, points=120, channel="pos")

    assert entry.kind == Entry.Kind.REDEEM and entry.amount == -120 and entry.balance_after == 30
    assert balance_summary(member=member) == {
        "balance": 30,
        "pending": 0,
        "held": 0,
        "available": 30,
    }
    # FIFO: the first lot is empty, the second has 30 left.
    assert list(Lot.objects.order_by("earned_at").values_list("remaining", flat=True)) == [0, 30]
    assert [e.amount for e in entries_for(member=member)] == [-120, 50, 100]
    assert_reconciled()


def test_redeem_refusals():
    member = MemberFactory()
    services.points_earn(member=member, points=10)
    with pytest.raises(errors.InsufficientPoints) as exc:
        services.points_redeem(member=member, points=11)
    assert exc.value.code == "insufficient_points"
    with pytest.raises(errors.InvalidPoints) as exc:
        services.points_redeem(member=member, points=0)
    assert exc.value.code == "invalid_points"
    Member.objects.filter(pk=member.pk).update(status=Member.Status.BLOCKED)
    with pytest.raises(errors.MemberBlocked) as exc:
        services.points_redeem(member=member, points=5)
    assert exc.value.code == "member_blocked"
    assert balance_summary(member=member)["balance"] == 10
    assert list(Entry.objects.values_list("amount", flat=True)) == [10]


def test_reverse_may_go_below_zero_and_debt_blocks_redeem(assert_reconciled):
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100)
    services.points_redeem(member=member, points=80)
    services.points_reverse(entry=earn, points=60, reason="return")
    assert balance_summary(member=member)["balance"] == -40
    with pytest.raises(errors.AccountInDebt) as exc:
        services.points_redeem(member=member, points=1)
    assert exc.value.code == "account_in_debt"
    with pytest.raises(errors.AccountInDebt):
        services.hold_place(member=member, points=1)
    # Earning pays the debt first: only 10 of 50 land in the lot.
    services.points_earn(member=member, points=50)
    assert balance_summary(member=member)["balance"] == 10
    assert Lot.objects.filter(account__member=member, remaining__gt=0).get().remaining == 10
    # The rest of the earn can be reversed once; more is refused.
    rest = services.points_reverse(entry=earn, reason="return")
    assert (rest.amount, rest.refers_to_id, rest.balance_after) == (-40, earn.pk, -30)
    with pytest.raises(DomainError) as exc:
        services.points_reverse(entry=earn, points=1, reason="return")
    assert exc.value.code == "reverse_exceeds_entry"
    with pytest.raises(DomainError) as exc:
        services.points_reverse(entry=rest, reason="mistake")
    assert exc.value.code == "not_reversible"
    assert balance_summary(member=member)["balance"] == -30
    assert_reconciled()


def test_transfer_moves_points_and_keeps_expiry(assert_reconciled):
    alice, bob = MemberFactory(), MemberFactory()
    services.points_earn(member=alice, points=100, at=T0)
    out, into = services.points_transfer(source=alice, target=bob, points=70, reason="gift")
    assert (out.amount, into.amount, into.refers_to_id) == (-70, 70, out.pk)
    assert balance_summary(member=alice)["balance"] == 30
    assert balance_summary(member=bob)["balance"] == 70
    alice_lot = Lot.objects.get(account__member=alice)
    assert Lot.objects.get(account__member=bob).expires_at == alice_lot.expires_at
    with pytest.raises(errors.InsufficientPoints) as exc:
        services.points_transfer(source=alice, target=bob, points=31, reason="gift")
    assert exc.value.code == "insufficient_points"
    with pytest.raises(DomainError) as exc:
        services.points_transfer(source=alice, target=alice, points=1, reason="gift")
    assert exc.value.code == "same_member"
    assert balance_summary(member=alice)["balance"] == 30
    assert_reconciled()


def test_earn_batch_pays_debt_first_and_matches_single_earns(assert_reconciled):
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100)
    services.points_redeem(member=member, points=100)
    services.points_reverse(entry=earn, points=40, reason="return")  # balance -40
    start = datetime(2026, 1, 1, tzinfo=UTC)
    entries = services.points_earn_batch(
        member=member,
        earns=[
            {"points": 25, "at": start + timedelta(days=2)},
            {"points": 30, "at": start, "expires_at": start + timedelta(days=5)},
        ],
    )
    assert [(e.amount, e.balance_after) for e in entries] == [(30, -10), (25, 15)]
    lots = list(Lot.objects.filter(account__member=member, points__in=[25, 30]).order_by("points"))
    assert [(lot.points, lot.remaining) for lot in lots] == [(25, 15), (30, 0)]
    assert_reconciled()
