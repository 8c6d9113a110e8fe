import random
from datetime import timedelta

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


def test_every_month_of_the_whole_demo_rolls_forward_to_zero():
    """The rewards demo backdates redemptions over the year, each after the points it spends,
    so no month of the demo shows a difference and no redemption needed moving."""
    from django.core.management import call_command
    from django.db.models import F, Min
    from django.utils import timezone

    from ledger.finance.rollforward import rollforward_month
    from ledger.models import LotConsumption

    call_command("demo_data", members=30)
    # (Read in Python: SQLite, the embedded mode's database, has no JSON containment.)
    moved = [
        (kind, reference)
        for kind, reference, explanation in Entry.objects.values_list(
            "kind", "reference", "explanation"
        )
        for item in (explanation if isinstance(explanation, list) else [])
        if isinstance(item, dict) and item.get("note") == "dated_after_lot"
    ]
    assert Entry.objects.filter(kind=Entry.Kind.REDEEM).exists()
    assert [m for m in moved if m[0] == Entry.Kind.REDEEM] == []
    assert not LotConsumption.objects.filter(at__lt=F("lot__earned_at")).exists()
    month = timezone.localtime(Entry.objects.aggregate(first=Min("created_at"))["first"])
    month = month.date().replace(day=1)
    while month <= timezone.localdate():
        period = rollforward_month(year=month.year, month=month.month)
        assert period.closes, (month, period.lines["difference"])
        assert all(lines["difference"].points == 0 for _tier, lines in period.by_tier), month
        month = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
