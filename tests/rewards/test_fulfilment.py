"""Fulfilment of rewards that ship (rewards/services/fulfilment.py)."""

import pytest

from ledger.selectors import balance_summary
from rewards import services
from rewards.errors import (
    FulfilmentTransition,
)
from rewards.models import Redemption
from tests.rewards.factories import (
    ProductRewardFactory,
    RewardFactory,
)

pytestmark = pytest.mark.django_db


def available(member) -> int:
    return balance_summary(member=member)["available"]


def test_physical_rewards_go_through_fulfilment(member_with):
    member = member_with(1000, profile={"address": "Damrak 1\n1012 LG Amsterdam"})
    reward = ProductRewardFactory(points=300, stock=10)
    redemption = services.redemption_redeem(member=member, reward=reward)
    assert redemption.fulfilment_status == Redemption.FulfilmentStatus.TO_SHIP
    assert redemption.shipping_address == "Damrak 1\n1012 LG Amsterdam"

    with pytest.raises(FulfilmentTransition) as caught:
        services.fulfilment_set(redemption=redemption, status="delivered")
    assert caught.value.code == "fulfilment_transition"
    services.fulfilment_set(redemption=redemption, status="shipped", tracking_code="3SABC123")
    services.fulfilment_set(redemption=redemption, status="delivered")
    services.fulfilment_set(redemption=redemption, status="returned")
    redemption.refresh_from_db()
    assert redemption.fulfilment_status == "returned"
    assert redemption.tracking_code == "3SABC123"

    given = services.redemption_redeem(
        member=member, reward=reward, shipping_address="Postbus 5, 3500 AA Utrecht"
    )
    assert given.shipping_address == "Postbus 5, 3500 AA Utrecht"
    assert (
        services.redemption_redeem(member=member, reward=RewardFactory(points=1)).fulfilment_status
        == ""
    )
