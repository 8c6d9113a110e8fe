"""members.rows: the hand-written reads and updates of the hot paths (the ledger's account lock,
the API's member answer, the purchase's member lock) give what the ORM gives, on PostgreSQL and
SQLite alike."""

from datetime import UTC, date, datetime

import pytest
from django.db import connection

from ledger.models import Account
from members.models import Member, Tier
from members.rows import Rows
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

members = Rows(Member)
accounts = Rows(Account)


def _read(rows: Rows, pk: int):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {rows.columns('t')} FROM {rows.table} t WHERE t.id = %s", [pk])
        return rows.instance(cursor.fetchone())


def test_an_instance_reads_every_field_as_the_orm_does():
    tier = Tier.objects.create(name="Gold", rank=1, threshold=100)
    member = MemberFactory(
        phone="+31612345678",
        birth_date=date(1990, 2, 28),
        profile={"store": "S1", "children": 2, "pets": ["cat"]},
        tier=tier,
        tier_since=datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
        nps_score=9,
        nps_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
    )
    expected = Member.objects.get(pk=member.pk)

    found = _read(members, member.pk)

    assert isinstance(found, Member)
    assert not found._state.adding
    assert found._state.db == "default"
    for field in Member._meta.concrete_fields:
        assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.profile == {"store": "S1", "children": 2, "pets": ["cat"]}
    assert str(found.phone) == "+31612345678"
    assert found.public_id == member.public_id
    assert found.tier_since.tzinfo is not None
    assert found.tier.name == "Gold"  # the foreign key's id is set: the relation loads


def test_empty_and_null_columns_read_as_the_orm_reads_them():
    member = MemberFactory(phone="", birth_date=None, profile={})
    found = _read(members, member.pk)
    assert found.birth_date is None
    assert found.profile == {}
    assert found.tier_id is None
    assert str(found.phone) == str(Member.objects.get(pk=member.pk).phone)


def test_an_update_prepares_its_values_and_changes_only_that_row():
    one, other = MemberFactory(), MemberFactory()
    first = Account.objects.create(member=one, balance=5)
    second = Account.objects.create(member=other, balance=7)
    moved = datetime(2026, 10, 25, 1, 15, tzinfo=UTC)

    changed = accounts.update(first.pk, balance=12, updated_at=moved, debt_moved_at=None)

    assert changed == 1
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.balance, first.updated_at, first.debt_moved_at) == (12, moved, None)
    assert second.balance == 7
    assert accounts.update(second.pk + 1000, balance=1) == 0
    # The kept statement serves the next update of the same fields with other values.
    accounts.update(first.pk, balance=-3, updated_at=moved, debt_moved_at=moved)
    first.refresh_from_db()
    assert (first.balance, first.debt_moved_at) == (-3, moved)


def test_an_insert_stores_every_row_and_gives_each_its_key():
    from decimal import Decimal

    from ledger.models import Purchase, PurchaseLine

    member = MemberFactory()
    purchase = Purchase(
        member=member,
        channel="till",
        external_id="R-1",
        amount=Decimal("12.50"),
        currency="EUR",
        occurred_at=datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    )
    Rows(Purchase).insert([purchase])
    lines = [
        PurchaseLine(purchase=purchase, sku=f"SKU{n}", quantity=n, amount=Decimal(f"{n}.25"))
        for n in (1, 2, 3)
    ]
    Rows(PurchaseLine).insert(lines)
    Rows(PurchaseLine).insert([])  # nothing to write: no statement

    assert purchase.pk is not None and not purchase._state.adding
    stored = Purchase.objects.get(pk=purchase.pk)
    assert (stored.member_id, stored.amount, stored.occurred_at) == (
        member.pk,
        Decimal("12.50"),
        datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
    )
    assert stored.created_at == purchase.created_at  # the field's default, as save() stores it
    assert stored.status == Purchase.Status.RECORDED
    # Each instance has the key of its own row, in order.
    for line in lines:
        assert PurchaseLine.objects.get(pk=line.pk).sku == line.sku
    assert [line.pk for line in lines] == sorted(line.pk for line in lines)
