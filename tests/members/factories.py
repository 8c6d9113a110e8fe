from decimal import Decimal

import factory

from members.models import Tier


class TierFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tier

    name = factory.Sequence(lambda n: f"Tier {n}")
    rank = factory.Sequence(lambda n: n)
    threshold = 0
    window_months = 12
    earn_multiplier = Decimal("1.00")
    downgrade_grace_days = 0


def ladder():
    """Bronze 0, Silver 500, Gold 1500 over 12 months; Gold has a 30-day grace period."""
    return (
        TierFactory(name="Bronze", rank=0, threshold=0),
        TierFactory(name="Silver", rank=1, threshold=500),
        TierFactory(name="Gold", rank=2, threshold=1500, downgrade_grace_days=30),
    )
