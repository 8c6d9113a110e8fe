"""The date rule of the posting (posting.py, "Dates"): an entry asked for a past date is never
dated where the lots would disagree with the balances, and it keeps the date it asked for."""

from datetime import timedelta

import pytest

from ledger import services
from ledger.expiry import expiry_for
from ledger.finance import liability
from ledger.finance.rollforward import rollforward
from ledger.models import Account, Entry, Hold
from tests.factories import MemberFactory, UserFactory
from tests.ledger.finance_histories import START

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


def closes(first, last) -> bool:
    return rollforward(start=first - DAY, end=last + DAY).closes and all(
        rollforward(start=first + n * DAY, end=first + (n + 1) * DAY).closes
        for n in range((last - first).days + 1)
    )


def test_a_debit_dated_before_the_lot_it_takes_from_is_dated_at_that_lot():
    member = MemberFactory()
    services.points_earn(member=member, points=100, at=START)
    newer = services.points_earn(member=member, points=100, at=START + 10 * DAY)
    asked = START + 3 * DAY
    redeem = services.points_redeem(member=member, points=150, at=asked)
    assert redeem.created_at == newer.created_at
    assert redeem.explanation == [{"note": "dated_after_lot", "dated": asked.isoformat()}]
    assert set(redeem.consumptions.values_list("at", flat=True)) == {newer.created_at}
    assert liability.points_outstanding(as_of=START + 5 * DAY) == 100
    assert closes(START, START + 12 * DAY)


def test_a_debit_the_older_lots_cover_keeps_its_date_and_has_no_note():
    member = MemberFactory()
    services.points_earn(member=member, points=100, at=START)
    services.points_earn(member=member, points=100, at=START + 10 * DAY)
    asked = START + 3 * DAY
    redeem = services.points_redeem(member=member, points=60, at=asked)
    assert (redeem.created_at, redeem.explanation) == (asked, [])


def test_a_redemption_through_a_hold_is_held_until_its_moved_entry():
    member = MemberFactory()
    lot = services.points_earn(member=member, points=100, at=START + 5 * DAY)
    hold = services.hold_place(member=member, points=80, at=START)
    entry = services.hold_post(hold=hold, at=START + DAY)
    assert entry.created_at == lot.created_at
    assert Hold.objects.get(pk=hold.pk).resolved_at == entry.created_at


def test_a_return_into_debt_is_dated_after_the_accounts_newest_entry():
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100, at=START)
    later = services.points_redeem(member=member, points=50, at=START + 10 * DAY)
    asked = START + 2 * DAY
    clawback = services.points_reverse(entry=earn, reason="return", at=asked)
    assert clawback.created_at == later.created_at
    assert clawback.explanation == [{"note": "dated_after_debt", "dated": asked.isoformat()}]
    account = Account.objects.get(member=member)
    assert (account.balance, account.debt_moved_at) == (-50, later.created_at)
    assert liability.debt_at(as_of=START + 5 * DAY) == (0, 0)
    assert closes(START, START + 12 * DAY)


def test_an_earn_dated_before_a_debt_pays_it_at_the_debts_date_and_expires_from_its_own():
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100, at=START)
    services.points_redeem(member=member, points=100, at=START + DAY)
    clawback = services.points_reverse(entry=earn, reason="return", at=START + 10 * DAY)
    asked = START + 5 * DAY
    paid = services.points_earn(member=member, points=30, at=asked)
    assert paid.created_at == clawback.created_at
    assert paid.lot.earned_at == clawback.created_at
    assert paid.lot.expires_at == expiry_for(asked)
    assert list(paid.consumptions.values_list("points", "at")) == [(30, clawback.created_at)]
    # Once the debt is paid, a credit dated before its last movement still comes after it.
    settled = services.points_earn(member=member, points=200, at=START + 12 * DAY)
    earlier = services.points_earn(member=member, points=10, at=START + 11 * DAY)
    assert earlier.created_at == settled.created_at
    assert Account.objects.get(member=member).debt_moved_at == settled.created_at
    assert closes(START, START + 14 * DAY)


def test_a_batch_of_earns_follows_the_same_rule():
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100, at=START)
    services.points_redeem(member=member, points=100, at=START + DAY)
    clawback = services.points_reverse(entry=earn, reason="return", at=START + 10 * DAY)
    entries = services.points_earn_batch(
        member=member,
        earns=[
            {"points": 60, "at": START + 2 * DAY},
            {"points": 60, "at": START + 3 * DAY},
            {"points": 5, "at": START + 20 * DAY},
        ],
    )
    assert [e.created_at for e in entries] == [clawback.created_at] * 2 + [START + 20 * DAY]
    assert Account.objects.get(member=member).debt_moved_at == clawback.created_at
    assert closes(START, START + 21 * DAY)


def test_a_transfer_dates_both_halves_at_the_debits_date():
    source, target = MemberFactory(), MemberFactory()
    lot = services.points_earn(member=source, points=100, at=START + 5 * DAY)
    out, into = services.points_transfer(
        source=source, target=target, points=40, reason="family", at=START
    )
    assert out.created_at == into.created_at == lot.created_at
    assert into.explanation[0]["dated"] == START.isoformat()


def test_a_staff_debit_follows_the_rule_too():
    member = MemberFactory()
    lot = services.points_earn(member=member, points=100, at=START + 5 * DAY)
    entry = services.points_adjust(
        member=member, points=-30, reason="typo", actor=UserFactory(), at=START
    )
    assert entry.created_at == lot.created_at


def test_an_entry_dated_now_never_moves_and_asks_nothing_more(django_assert_num_queries):
    member = MemberFactory()
    services.points_earn(member=member, points=100)
    # Savepoint, lock, member status, lots, entry, lot, consumption, balance, release: the
    # same as before the rule (its only query, the newest entry, is for entries moving a debt).
    with django_assert_num_queries(9):
        redeem = services.points_redeem(member=member, points=10)
    assert redeem.explanation == []
    assert not Entry.objects.exclude(explanation=[]).exists()


def test_the_migration_fills_when_each_debt_last_moved():
    import importlib

    from django.apps import apps

    fill = importlib.import_module("ledger.migrations.0015_account_debt_moved_at").fill
    member, clean = MemberFactory(), MemberFactory()
    earn = services.points_earn(member=member, points=100, at=START)
    services.points_earn(member=clean, points=10, at=START)
    services.points_redeem(member=member, points=80, at=START + DAY)
    services.points_reverse(entry=earn, reason="return", at=START + 2 * DAY)
    paid = services.points_earn(member=member, points=30, at=START + 3 * DAY)
    services.points_earn(member=member, points=90, at=START + 4 * DAY)
    Account.objects.update(debt_moved_at=None)
    fill(apps, None)
    assert dict(Account.objects.values_list("member", "debt_moved_at")) == {
        member.pk: START + 4 * DAY,
        clean.pk: None,
    }
    assert paid.created_at == START + 3 * DAY
