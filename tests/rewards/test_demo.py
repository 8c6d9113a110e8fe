import random
from datetime import timedelta

import pytest
from django.utils import timezone

from ledger import services as ledger_services
from ledger.selectors import ledger_mismatches
from rewards import demo
from rewards.models import Redemption, Reward, VoucherCode
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_demo_catalogue_and_redemptions_load_once():
    # Points earned a month ago, as the demo's ledger step backdates them: the demo dates each
    # redemption after the points it spends, so points earned just now leave it no day to use.
    for index in range(12):
        ledger_services.points_earn(
            member=MemberFactory(email=f"demo{index}@{demo.DEMO_DOMAIN}"),
            points=3000,
            reason="test",
            at=timezone.now() - timedelta(days=30),
        )

    made = demo.load(rng=random.Random(1), share=1.0)

    assert Reward.objects.count() == len(demo.CATALOGUE) >= 25
    assert made == Redemption.objects.filter(status="confirmed").count() > 0
    assert VoucherCode.objects.filter(status__in=["issued", "used"]).exists()
    assert not list(ledger_mismatches())
    assert demo.load(rng=random.Random(1)) == 0
    assert Reward.objects.count() == len(demo.CATALOGUE)
