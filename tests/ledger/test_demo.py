import random

import pytest

from ledger import demo
from ledger.models import AdjustmentRequest, Entry, Lot
from ledger.selectors import account_mismatches, accounts_with_totals
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_demo_history_reconciles_and_is_loaded_once():
    members = [MemberFactory(email=f"m{n}@demo.example.nl") for n in range(25)]
    UserFactory(username="service")
    played = demo.load(rng=random.Random(1))
    assert played > 25 * 10
    assert not [a for a in accounts_with_totals() if account_mismatches(a)]
    kinds = set(Entry.objects.values_list("kind", flat=True))
    assert {"earn", "redeem", "adjust", "expire", "transfer"} <= kinds
    assert AdjustmentRequest.objects.filter(status="pending").count() == 2
    assert Lot.objects.filter(expired_at__isnull=False).exists()
    # Balance after reads right in time order for every member.
    for member in members:
        running = 0
        for amount, after in (
            Entry.objects.filter(account__member=member)
            .order_by("created_at", "id")
            .values_list("amount", "balance_after")
        ):
            running += amount
            assert after == running
    count = Entry.objects.count()
    assert demo.load(rng=random.Random(1)) == 0
    assert Entry.objects.count() == count
