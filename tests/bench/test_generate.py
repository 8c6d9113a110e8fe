"""bench/generate.py: the scale data set holds the ledger's invariants and is built once."""

import io

import pytest
from django.core.management import call_command
from django.db import connection

from bench import generate
from ledger.models import Account, Entry, Lot, LotConsumption, Purchase, PurchaseLine
from members.cardnumbers import is_valid
from members.models import Card, Consent, Member, TierHistory
from rewards.models import Redemption

pytestmark = pytest.mark.django_db

MEMBERS = 200


@pytest.fixture
def generated():
    return generate.generate(members=MEMBERS, progress=False)


def _scalar(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_counts(generated):
    assert generated["reused"] is False
    # The foreign-key triggers are back on for whatever the connection does next.
    assert _scalar("SHOW session_replication_role") == "origin"
    assert Member.objects.count() == MEMBERS
    assert Account.objects.count() == MEMBERS
    # One card each, and an old blocked one for one member in 33 (200 // 33 = 6).
    assert Card.objects.filter(status="active").count() == MEMBERS
    assert Card.objects.filter(status="blocked").count() == MEMBERS // 33
    assert all(is_valid(number) for number in Card.objects.values_list("number", flat=True))
    purchases = Purchase.objects.count()
    assert 8 * MEMBERS <= purchases <= 12 * MEMBERS
    assert 1.5 * purchases <= PurchaseLine.objects.count() <= 4 * purchases
    entries = Entry.objects.count()
    assert 20 * MEMBERS <= entries <= 35 * MEMBERS
    redemptions = Redemption.objects.count()
    assert redemptions == Entry.objects.filter(kind="redeem").count() > MEMBERS
    assert Lot.objects.count() == Entry.objects.filter(kind="earn").count()
    assert LotConsumption.objects.exists()
    assert Consent.objects.filter(purpose="marketing_email", action="grant").count() > MEMBERS / 2
    # Everybody enrolled in the entry tier; the ones above it have the change that took them.
    assert TierHistory.objects.filter(reason="enrol").count() == MEMBERS
    above = Member.objects.exclude(tier__rank=0).count()
    assert 0 < above == TierHistory.objects.filter(reason="qualified").count()


def test_ledger_invariants(generated):
    # A balance is the sum of its entries and of its lots' remaining, and no debit took it
    # below zero: what the nightly reconciliation checks.
    out = io.StringIO()
    call_command("ledger_reconcile", "--no-progress", stdout=out, stderr=io.StringIO())
    assert f"checked {MEMBERS} accounts, 0 mismatches" in out.getvalue()
    assert not Entry.objects.filter(balance_after__lt=0).exists()
    # Each entry's balance_after is the running sum of its account's entries in id order.
    assert not _scalar(
        """SELECT count(*) FROM (SELECT balance_after, sum(amount) OVER
           (PARTITION BY account_id ORDER BY id) AS running FROM ledger_entry) s
           WHERE balance_after <> running"""
    )
    # Ids follow time, as a live programme's do.
    assert not _scalar(
        """SELECT count(*) FROM (SELECT created_at, lag(created_at) OVER (ORDER BY id) AS prev
           FROM ledger_entry) s WHERE created_at < prev"""
    )
    # A lot's remaining is its points less what consumed it; consumption only after earning,
    # oldest lots first: no open lot is older than a consumed one's partly spent sibling.
    assert not _scalar(
        """SELECT count(*) FROM ledger_lot l WHERE l.remaining <> l.points - coalesce(
           (SELECT sum(points) FROM ledger_lotconsumption c WHERE c.lot_id = l.id), 0)"""
    )
    assert not _scalar(
        """SELECT count(*) FROM ledger_lotconsumption c JOIN ledger_lot l ON l.id = c.lot_id
           WHERE c.at < l.earned_at"""
    )
    assert not _scalar(
        """SELECT count(*) FROM ledger_lot spent JOIN ledger_lot older
           ON older.account_id = spent.account_id AND older.earned_at < spent.earned_at
           WHERE spent.remaining < spent.points AND older.remaining > 0
             AND older.remaining = older.points"""
    )


def _indexes():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
            " WHERE indrelid::regclass::text = ANY(%s) ORDER BY 1",
            [generate.MONTHLY],
        )
        return cursor.fetchall()


def test_indexes_are_built_again():
    # The load drops the ledger's secondary indexes and builds them again: the same ones.
    before = _indexes()
    generate.generate(members=20, progress=False)
    assert _indexes() == before
    assert ("entry_account_period",) in {(name,) for name, _ in before}


def test_second_run_with_the_same_size_does_nothing(generated):
    entries = Entry.objects.count()
    assert generate.generate(members=MEMBERS, progress=False)["reused"] is True
    assert Entry.objects.count() == entries


def test_another_size_is_refused(generated):
    with pytest.raises(SystemExit, match="fresh database"):
        generate.generate(members=MEMBERS + 1, progress=False)
