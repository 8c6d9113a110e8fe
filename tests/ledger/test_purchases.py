from datetime import UTC, datetime
from decimal import Decimal

import pytest

from ledger import errors, services
from ledger.models import Purchase
from loyalty_site.errors import Conflict, DomainError
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def _store(member, external_id, **fields):
    fields = {"amount": Decimal("10.00"), "currency": "EUR", "occurred_at": T0, **fields}
    return services.purchase_store_first(
        member=member, channel="pos", external_id=external_id, **fields
    )


def test_purchase_and_returns():
    member = MemberFactory()
    purchase, first = services.purchase_store_first(
        member=member,
        channel="pos",
        external_id="R1",
        amount=Decimal("30.00"),
        currency="eur",
        occurred_at=T0,
        lines=[{"sku": "A", "quantity": 2, "amount": "20.00"}, {"sku": "B", "amount": "10.00"}],
    )
    assert first is True
    assert purchase.currency == "EUR" and purchase.lines.count() == 2
    with pytest.raises(errors.DuplicatePurchase) as exc:
        services.purchase_store_first(
            member=member,
            channel="pos",
            external_id="R1",
            amount=Decimal("1"),
            currency="EUR",
            occurred_at=T0,
        )
    assert exc.value.code == "duplicate_purchase"
    line_a = purchase.lines.get(sku="A")
    partial = services.return_store(purchase=purchase, lines=[{"line": line_a, "quantity": 1}])
    assert partial.amount == Decimal("10.00")
    assert list(partial.lines.values_list("line", "quantity", "amount")) == [
        (line_a.pk, 1, Decimal("10.00"))
    ]
    with pytest.raises(errors.ReturnExceedsPurchase) as exc:
        services.return_store(purchase=purchase, amount=Decimal("20.01"))
    assert exc.value.code == "return_exceeds_purchase"
    rest = services.return_store(purchase=purchase, external_id="ret-2")
    assert rest.amount == Decimal("20.00")
    with pytest.raises(Conflict) as exc:
        services.return_store(purchase=purchase, external_id="ret-2", amount=Decimal("0"))
    assert exc.value.code == "duplicate_return"


def test_first_purchase_is_per_member_and_a_repeat_is_refused_for_any_member():
    member, other = MemberFactory(), MemberFactory()
    first, is_first = _store(member, "A-1", lines=[{"sku": "X", "amount": "10.00"}])
    assert is_first is True
    assert _store(member, "A-2")[1] is False
    assert _store(other, "B-1")[1] is True
    # (channel, external id) is unique across members: the same receipt twice is refused.
    with pytest.raises(errors.DuplicatePurchase):
        _store(other, "A-1")
    assert list(Purchase.objects.filter(external_id="A-1").values_list("member", flat=True)) == [
        member.pk
    ]
    assert first.lines.get().sku == "X"
    # Another channel's receipt with the same number is another purchase.
    assert (
        services.purchase_store_first(
            member=other,
            channel="webshop",
            external_id="A-1",
            amount=Decimal("5"),
            currency="EUR",
            occurred_at=T0,
        )[0].channel
        == "webshop"
    )


def test_purchase_refusals_store_nothing():
    member = MemberFactory()
    with pytest.raises(DomainError) as exc:
        _store(member, "C-1", currency="EURO")
    assert exc.value.code == "invalid_currency"
    assert not Purchase.objects.exists()
