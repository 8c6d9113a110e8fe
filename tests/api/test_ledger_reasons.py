"""The API ledger names why points moved as a code with parameters, and as text in the request's
language (issue 12, item 19); the services above the ledger write codes, not sentences."""

from decimal import Decimal

import pytest

from campaigns.services import event_record, purchase_record, return_record
from ledger.models import Entry
from rewards.services import redemption_redeem
from tests.api.factories import member_with
from tests.campaigns.factories import EarningRuleFactory, EngagementKindFactory
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _base_rate(db):
    EarningRuleFactory()


def test_purchases_returns_events_and_redemptions_write_codes():
    member = member_with()
    purchase = purchase_record(
        member=member, channel="pos", external_id="R-1001", amount=Decimal("50.00"),
        currency="EUR",
    ).purchase  # fmt: skip
    return_record(purchase=purchase, amount=Decimal("10.00"))
    event_record(member=member, kind=EngagementKindFactory(code="review", name="Product review"))
    event_record(member=member, kind=EngagementKindFactory(code="birthday", name="Jarig!"))
    redemption_redeem(member=member, reward=RewardFactory(points=5), channel="pos")
    written = {
        (e.kind, e.reason_code, tuple(sorted(e.reason_params.items())), e.reason)
        for e in Entry.objects.filter(account__member=member)
    }
    assert written == {
        ("earn", "purchase", (("id", "R-1001"),), ""),
        ("reverse", "purchase_return", (("id", "R-1001"),), ""),
        ("earn", "engagement", (("kind", "review"), ("name", "Product review")), ""),
        ("earn", "birthday", (), ""),
        ("redeem", "redemption", (), ""),
    }


@pytest.mark.parametrize(
    ("language", "text"), [("en", "Purchase R-2002"), ("nl", "Aankoop R-2002")]
)
def test_the_ledger_answers_the_reason_in_the_requests_language(api, language, text):
    member = member_with()
    purchase_record(
        member=member, channel="till", external_id="R-2002", amount=Decimal("20.00"),
        currency="EUR",
    )  # fmt: skip
    response = api.get(f"/api/v1/members/{member.public_id}/ledger/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    [entry] = response.json()["results"]
    assert (entry["reason_code"], entry["reason_params"], entry["reason"]) == (
        "purchase",
        {"id": "R-2002"},
        text,
    )


def test_a_typed_reason_has_no_code(api):
    member = member_with(points=30)  # posted with reason="test"
    [entry] = api.get(f"/api/v1/members/{member.public_id}/ledger/").json()["results"]
    assert (entry["reason_code"], entry["reason_params"], entry["reason"]) == ("", {}, "test")
