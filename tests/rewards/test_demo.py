import random

import pytest

from ledger.selectors import ledger_mismatches
from rewards import demo
from rewards.models import Redemption, Reward, VoucherCode

pytestmark = pytest.mark.django_db


def test_demo_catalogue_and_redemptions_load_once(member_with):
    for index in range(12):
        member_with(3000, email=f"demo{index}@{demo.DEMO_DOMAIN}")

    made = demo.load(rng=random.Random(1), share=1.0)

    assert Reward.objects.count() == len(demo.CATALOGUE) >= 25
    assert made == Redemption.objects.filter(status="confirmed").count() > 0
    assert VoucherCode.objects.filter(status__in=["issued", "used"]).exists()
    assert not list(ledger_mismatches())
    assert demo.load(rng=random.Random(1)) == 0
    assert Reward.objects.count() == len(demo.CATALOGUE)
