"""The abuse guard: each guard trips, points wait, customer service approves or rejects."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from campaigns.models import AbuseRule, EarningAward, EarningRule, PurchaseReview
from campaigns.services import (
    event_approve,
    purchase_record,
    purchase_review_approve,
    purchase_review_reject,
    referral_code_for,
    referral_register,
)
from ledger.models import Account, Purchase
from loyalty_site.errors import DomainError
from tests.campaigns.factories import EarningRuleFactory, EngagementKindFactory
from tests.factories import CardFactory, MemberFactory, UserFactory

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def balance(member):
    account = Account.objects.filter(member=member).first()
    return account.balance if account else 0


def buy(member, external_id, amount="10.00", at=T0, store="ams"):
    # Received when it happened: the guards count by both times (see the backdating test).
    with time_machine.travel(at, tick=False):
        return purchase_record(
            member=member, channel="pos", external_id=external_id, amount=Decimal(amount),
            currency="EUR", occurred_at=at, store=store,
        )  # fmt: skip


@pytest.mark.django_db
def test_backdated_purchases_count_by_the_time_they_were_received(base):
    guard(AbuseRule.Kind.MEMBER_VELOCITY, 2)
    member = MemberFactory()
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        statuses = [
            purchase_record(
                member=member, channel="pos", external_id=f"L-{days}", amount=Decimal("10"),
                currency="EUR", occurred_at=T0 + timedelta(days=days), store="ams",
            ).status
            for days in (0, 1, 2)
        ]  # fmt: skip
    assert statuses == [Purchase.Status.RECORDED, Purchase.Status.RECORDED, "under_review"]


@pytest.fixture
def base(db):
    return EarningRuleFactory(name="Base", rate=1)


def guard(kind, threshold, **kwargs):
    return AbuseRule.objects.create(kind=kind, threshold=Decimal(threshold), **kwargs)


@pytest.mark.django_db
def test_member_velocity_sends_the_purchase_to_review(base):
    guard(AbuseRule.Kind.MEMBER_VELOCITY, 2)
    member = MemberFactory()
    buy(member, "A", at=T0)
    buy(member, "B", at=T0 + timedelta(minutes=10))
    result = buy(member, "C", at=T0 + timedelta(minutes=20))
    assert result.status == Purchase.Status.UNDER_REVIEW
    assert result.points_earned == 0
    assert result.pending == 10
    # The threshold as people write it (stored as 2.00).
    assert result.review_reason == "More than 2 purchases by this member in an hour."
    assert balance(member) == 20
    review = PurchaseReview.objects.get(purchase=result.purchase)
    assert review.points == 10 and review.status == PurchaseReview.Status.OPEN
    # An hour later the member is normal again.
    assert buy(member, "D", at=T0 + timedelta(minutes=90)).status == Purchase.Status.RECORDED


@pytest.mark.django_db
def test_store_velocity(base):
    guard(AbuseRule.Kind.STORE_VELOCITY, 1)
    member = MemberFactory()
    buy(member, "A", store="ams")
    assert buy(member, "B", store="utr").status == Purchase.Status.RECORDED
    assert buy(member, "C", store="ams").status == Purchase.Status.UNDER_REVIEW


@pytest.mark.django_db
def test_card_velocity_counts_purchases_per_card(base):
    guard(AbuseRule.Kind.CARD_VELOCITY, 2)
    member = MemberFactory()
    card = CardFactory(member=member)

    def by_card(external_id, minutes):
        at = T0 + timedelta(minutes=minutes)
        with time_machine.travel(at, tick=False):
            return purchase_record(
                card_number=card.number, channel="pos", external_id=external_id,
                amount=Decimal("10.00"), currency="EUR", occurred_at=at,
            )  # fmt: skip

    assert by_card("A", 0).purchase.card == card
    # A purchase by member id presented no card: it does not count for the card.
    assert buy(member, "B", at=T0 + timedelta(minutes=5)).purchase.card is None
    assert by_card("C", 10).status == Purchase.Status.RECORDED
    result = by_card("D", 20)
    assert result.status == Purchase.Status.UNDER_REVIEW
    assert "with this card in an hour" in result.review_reason
    # An hour after the first two card purchases the card is normal again.
    assert by_card("E", 75).status == Purchase.Status.RECORDED


@pytest.mark.django_db
def test_points_per_day(base):
    guard(AbuseRule.Kind.POINTS_PER_DAY, 100)
    member = MemberFactory()
    assert buy(member, "A", amount="60").status == Purchase.Status.RECORDED
    assert buy(member, "B", amount="60", at=T0 + timedelta(hours=2)).status == "under_review"
    assert buy(member, "C", amount="60", at=T0 + timedelta(hours=30)).status == "recorded"


@pytest.mark.django_db
def test_far_above_the_members_own_norm(base):
    guard(AbuseRule.Kind.ABOVE_NORM, 5, min_history=3)
    member = MemberFactory()
    for i in range(3):
        buy(member, f"N{i}", amount="20", at=T0 - timedelta(days=i + 1))
    assert buy(member, "BIG", amount="99").status == Purchase.Status.RECORDED
    assert buy(member, "HUGE", amount="500").status == Purchase.Status.UNDER_REVIEW
    # A newcomer without history is not judged against a norm.
    assert buy(MemberFactory(), "NEW", amount="5000").status == Purchase.Status.RECORDED


@pytest.mark.django_db
def test_many_new_members_buying_in_one_store(base):
    guard(AbuseRule.Kind.NEW_CARDS, 2)
    statuses = [
        buy(MemberFactory(enrolled_at=T0 - timedelta(hours=1)), f"S{i}").status for i in range(3)
    ]
    assert statuses == ["recorded", "recorded", "under_review"]
    old = MemberFactory(enrolled_at=T0 - timedelta(days=90))
    assert buy(old, "OLD").status == "recorded"


@pytest.mark.django_db
def test_many_referrals_from_one_referrer_wait_for_moderation():
    guard(AbuseRule.Kind.REFERRALS, 1)
    EngagementKindFactory(code="referral", points=100)
    EarningRuleFactory(rate=0)
    referrer = MemberFactory()
    code = referral_code_for(member=referrer).code
    newcomers = [MemberFactory() for _ in range(3)]
    for i, newcomer in enumerate(newcomers):
        referral_register(referred=newcomer, code=code)
        purchase_record(
            member=newcomer, channel="pos", external_id=f"R{i}", amount=1, currency="EUR"
        )
    assert balance(referrer) == 100
    assert all(balance(n) == 100 for n in newcomers)
    from campaigns.models import EngagementEvent

    waiting = EngagementEvent.objects.filter(member=referrer, status="pending")
    assert waiting.count() == 2
    event_approve(event=waiting.first(), actor=UserFactory())
    assert balance(referrer) == 200


@pytest.mark.django_db
def test_approve_posts_the_held_points_with_their_explanation(base):
    guard(AbuseRule.Kind.MEMBER_VELOCITY, 0)
    member, agent = MemberFactory(), UserFactory()
    result = buy(member, "A", amount="42")
    assert balance(member) == 0
    review = PurchaseReview.objects.get()
    purchase_review_approve(review=review, actor=agent)
    assert balance(member) == 42
    review.refresh_from_db()
    assert review.status == "approved" and review.decided_by == agent
    result.purchase.refresh_from_db()
    assert result.purchase.status == "recorded"
    entry = result.purchase.entries.get()
    assert entry.explanation == [{"rule": "Base", "rule_id": base.pk, "points": 42}]
    with pytest.raises(DomainError) as excinfo:
        purchase_review_reject(review=review, actor=agent)
    assert excinfo.value.code == "not_pending"
    assert balance(member) == 42


@pytest.mark.django_db
def test_reject_voids_the_points_and_gives_the_budget_back():
    guard(AbuseRule.Kind.MEMBER_VELOCITY, 0)
    rule = EarningRuleFactory(kind=EarningRule.Kind.BONUS, bonus_points=30, budget_points=100)
    member = MemberFactory()
    result = buy(member, "A")
    rule.refresh_from_db()
    assert rule.budget_spent == 30
    purchase_review_reject(review=PurchaseReview.objects.get(), actor=UserFactory())
    rule.refresh_from_db()
    assert rule.budget_spent == 0
    assert not EarningAward.objects.exists()
    result.purchase.refresh_from_db()
    assert result.purchase.status == "rejected"
    assert balance(member) == 0


@pytest.mark.django_db
def test_inactive_guard_does_not_trip(base):
    guard(AbuseRule.Kind.MEMBER_VELOCITY, 0, active=False)
    assert buy(MemberFactory(), "A").status == "recorded"


@pytest.mark.django_db
def test_return_while_under_review_is_settled_on_approval(base):
    from campaigns.services import return_record

    guard(AbuseRule.Kind.MEMBER_VELOCITY, 0)
    member = MemberFactory()
    result = buy(member, "A", amount="40")
    assert return_record(purchase=result.purchase, amount=Decimal("10")).points_reversed == 0
    purchase_review_approve(review=PurchaseReview.objects.get(), actor=UserFactory())
    assert balance(member) == 30
