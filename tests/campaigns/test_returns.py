"""Returns (campaigns/services/returns.py): what a clawback does to a reservation made before it
(issue 12, point 16). Decision: the reservation is kept, as the channel made it; confirming it
is refused while the balance no longer covers it; cancelling it (or its time-out) releases it."""

from decimal import Decimal

import pytest

from campaigns.services import purchase_record, return_record
from ledger.errors import InsufficientPoints
from ledger.models import Account, Hold
from rewards.models import Redemption
from rewards.services import redemption_cancel, redemption_confirm, redemption_reserve
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_a_clawback_keeps_an_earlier_reservation_which_then_cannot_be_confirmed():
    EarningRuleFactory(rate=Decimal(10))
    member = MemberFactory()
    result = purchase_record(
        member=member, channel="pos", external_id="P-1", amount=Decimal("10.00"), currency="EUR"
    )
    assert result.balance == 100
    redemption = redemption_reserve(member=member, points=80, channel="app")
    returned = return_record(purchase=result.purchase)
    assert (returned.points_reversed, returned.balance) == (100, 0)
    hold = Hold.objects.get(pk=redemption.hold_id)
    assert hold.status == Hold.Status.OPEN  # kept: the channel decides, the ledger stays exact
    with pytest.raises(InsufficientPoints):
        redemption_confirm(redemption=redemption)
    redemption.refresh_from_db()
    assert redemption.status == Redemption.Status.RESERVED
    redemption_cancel(redemption=redemption)
    hold.refresh_from_db()
    assert hold.status == Hold.Status.VOIDED
    assert Account.objects.get(member=member).held == 0
