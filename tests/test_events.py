"""Events come from the use case that makes the change, whatever called it (issue 11, point 4).

Each test calls a service the way a page, the admin, a command or a nightly task does (no API
view in between) and reads the webhook deliveries it recorded.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction

from campaigns.services import event_record, purchase_record
from campaigns.tiers import tiers_recalculate
from ledger.services import points_earn
from loyalty_site.models import Channel, WebhookDelivery, WebhookSubscription
from members.events import Event, event_emit
from members.models import AuditEntry
from members.services import member_enrol, member_tier_set
from rewards.services import redemption_redeem
from tests.campaigns.factories import ChallengeFactory, EngagementKindFactory
from tests.factories import MemberFactory, UserFactory
from tests.members.factories import ladder
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 27, 2, 30, tzinfo=UTC)


@pytest.fixture
def every_event():
    """A subscription that hears every channel's events of every type."""
    channel = Channel.objects.create(name="crm", kind=Channel.Kind.PARTNER)
    WebhookSubscription.objects.create(
        channel=channel,
        url="https://crm.example.nl/hook",
        secret="s",
        event_types=[
            "member.enrolled",
            "tier.changed",
            "points.earned",
            "redemption.confirmed",
        ],
        all_channels=True,
    )

    def sent(event_type):
        return [
            (d.payload["channel"], d.payload["data"])
            for d in WebhookDelivery.objects.filter(event_type=event_type).order_by("pk")
        ]

    return sent


def test_the_nightly_tier_recalculation_announces_each_move(every_event):
    ladder()
    member = member_enrol(email="up@example.nl")
    points_earn(member=member, points=600, at=NOW - timedelta(days=1))
    tiers_recalculate(now=NOW)
    assert every_event("tier.changed") == [
        (
            "",
            {
                "member": str(member.public_id),
                "from": "Bronze",
                "to": "Silver",
                "reason": "qualified",
            },
        )
    ]


def test_a_staff_tier_change_is_announced_and_audited_with_who(every_event):
    _bronze, _silver, gold = ladder()
    member = member_enrol(email="vip@example.nl")
    agent = UserFactory(is_staff=True)
    member_tier_set(member=member, tier=gold, actor=agent, note="Complaint settled")
    [(channel, data)] = every_event("tier.changed")
    assert data == {
        "member": str(member.public_id),
        "from": "Bronze",
        "to": "Gold",
        "reason": "staff",
    }
    audit = AuditEntry.objects.get(action="member_tier_set", member=member)
    assert audit.actor == agent and audit.reason == "Complaint settled"


def test_an_engagement_event_announces_its_points(every_event):
    EngagementKindFactory(code="review", points=25)
    member = MemberFactory()
    event = event_record(member=member, kind="review", reference="r-1", channel="app")
    [(channel, data)] = every_event("points.earned")
    assert channel == "app"
    assert data["member"] == str(member.public_id)
    assert (data["points"], data["balance"], data["reference"]) == (25, 25, f"event:{event.pk}")


def test_challenge_points_are_announced_like_any_other_earn(every_event):
    ChallengeFactory(name="First buy", target=1, reward_points=40)
    member = MemberFactory()
    purchase_record(
        member=member, channel="pos", external_id="P-1", amount=10, currency="EUR"
    )  # no earning rule: the challenge gives the only points
    [(_channel, data)] = every_event("points.earned")
    assert (data["points"], data["reference"].split(":")[0]) == (40, "challenge")


def test_an_enrolment_outside_the_api_is_announced(every_event):
    member = member_enrol(email="shop@example.nl", channel="import")
    [(channel, data)] = every_event("member.enrolled")
    assert channel == "import"
    assert data["member"] == str(member.public_id)
    assert data["card_number"] == member.cards.get().number


def test_a_redemption_by_staff_is_announced(every_event):
    member = MemberFactory()
    points_earn(member=member, points=300)
    reward = RewardFactory(points=100)
    redemption = redemption_redeem(member=member, reward=reward)
    [(_channel, data)] = every_event("redemption.confirmed")
    assert data == {
        "id": redemption.pk,
        "member": str(member.public_id),
        "reward": reward.pk,
        "points": 100,
        "balance": 200,
    }


def test_a_rolled_back_change_announces_nothing(every_event):
    with pytest.raises(RuntimeError), transaction.atomic():
        member_enrol(email="gone@example.nl")
        raise RuntimeError("the caller's transaction fails after the enrolment")
    assert every_event("member.enrolled") == []


def test_an_unknown_event_type_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown event type"):
        event_emit(event_type="points.stolen", data={})
    with pytest.raises(ValueError):
        Event(type="nonsense")
