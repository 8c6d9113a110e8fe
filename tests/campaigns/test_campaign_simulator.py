"""Simulating a draft earning campaign over a known set of past purchases."""

from datetime import datetime, time, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from campaigns import control
from campaigns.models import Campaign, Segment
from campaigns.services import purchase_record
from campaigns.simulator import TierLiability, campaign_simulate
from members.models import Tier
from tests.campaigns.campaigning import draft
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def past(day: int):
    return timezone.localdate() - timedelta(days=30 - day)


def bought(member, amount, day, n=[0]):  # noqa: B006 - a counter shared by the calls
    n[0] += 1
    at = datetime.combine(past(day), time(12), tzinfo=timezone.get_current_timezone())
    purchase_record(
        member=member, channel="pos", external_id=f"SIM{n[0]}", amount=Decimal(amount),
        currency="EUR", occurred_at=at, backdate=True,
    )  # fmt: skip


@pytest.fixture
def history():
    gold = Tier.objects.create(name="Gold", rank=2, threshold=10**9, earn_multiplier=Decimal("1.5"))
    EarningRuleFactory(name="Base", rate=Decimal(1))
    anna, bram, cees = MemberFactory(tier=gold), MemberFactory(tier=gold), MemberFactory()
    bought(anna, "20.00", 1)
    bought(cees, "20.00", 1)  # not in the segment
    bought(bram, "10.00", 2)
    bought(anna, "5.00", 3)
    bought(bram, "8.00", 4)
    bought(anna, "50.00", 12)  # after the simulated period
    segment = Segment.objects.create(
        name="Gold", definition={"all": [{"condition": "tier", "in": ["Gold"]}]}
    )
    return {"anna": anna, "bram": bram, "cees": cees, "segment": segment}


@override_settings(LOYALTY_POINT_VALUE=Decimal("0.01"))
def test_a_draft_campaign_is_replayed_with_its_budget_running_out_on_the_right_day(history):
    campaign = draft(segment=history["segment"], budget_points=25,
                     starts_at=timezone.now() + timedelta(days=3))  # fmt: skip
    report = campaign_simulate(campaign=campaign, first=past(1), last=past(10))
    assert (report.audience, report.control) == (2, 0)
    assert (report.purchases, report.purchases_treated) == (5, 4)
    # Its bonus: Anna 10, Bram 10, Anna the last 5 on day 3, Bram nothing on day 4.
    assert report.points == 25
    assert report.points_by_rule == {"Campaign bonus": 25}
    assert report.members_reached == 2
    assert report.budget_points == 25
    assert report.budget_exhausted_on == past(3)
    # With Gold's x1.5 on top: 15 + 15 + 8 (7 → 15 on a 5.00 purchase) + 0 extra points.
    assert report.extra_points == 38
    assert report.cost == Decimal("0.38")
    assert report.liability_by_tier == [TierLiability("Gold", 38, Decimal("0.38"))]
    # Nothing was written.
    campaign.refresh_from_db()
    assert (campaign.status, campaign.points_spent, campaign.audience) == ("draft", 0, None)


def test_the_member_cap_and_the_money_budget_are_replayed_too(history):
    campaign = draft(segment=history["segment"], member_cap_points=15,
                     budget_money=Decimal("1.00"))  # fmt: skip
    report = campaign_simulate(
        campaign=campaign, first=past(1), last=past(10), point_value=Decimal("0.05")
    )
    assert report.budget_points == 20  # 1.00 at 0.05 a point
    # Anna 10 then 5 (her cap), Bram 10 then... the budget's last 0: 20 in all.
    assert report.points == 20
    assert report.budget_exhausted_on == past(2)


def test_the_control_group_is_left_out_as_it_will_be_at_the_start(history):
    others = [MemberFactory() for _ in range(30)]
    for member in others:
        bought(member, "1.00", 5)
    # Everyone, half held out (a fixed salt, so the run does not depend on the draw).
    campaign = draft(control_basis_points=5000, salt=1_234_567)
    report = campaign_simulate(campaign=campaign, first=past(5), last=past(5))
    treated = [m for m in others if control.bucket(m.pk, campaign.salt) >= 5000]
    assert 0 < len(treated) < 30
    assert report.members_reached == len(treated)
    assert report.points == 10 * len(treated)
    everyone = [*others, history["anna"], history["bram"], history["cees"]]
    assert report.audience == len(everyone)
    assert report.control == sum(control.bucket(m.pk, campaign.salt) < 5000 for m in everyone)


def test_the_command_prints_the_projection(history):
    campaign = draft(segment=history["segment"], budget_points=25)
    out = StringIO()
    call_command(
        "campaign_simulate", str(campaign.pk), "--from", past(1).isoformat(),
        "--until", past(10).isoformat(), "--no-progress", stdout=out,
    )  # fmt: skip
    text = out.getvalue()
    assert "points from the campaign's rules: 25" in text
    assert f"budget: 25 points, runs out: {past(3).isoformat()}" in text
    assert "  Gold: 38 0.38" in text


def test_the_command_refuses_a_running_or_other_campaign(history):
    message = draft(kind=Campaign.Kind.MESSAGE, rules=())
    with pytest.raises(Exception, match="only an earning campaign"):
        call_command("campaign_simulate", str(message.pk), "--from", past(1).isoformat(),
                     "--until", past(2).isoformat(), "--no-progress")  # fmt: skip


def test_a_programme_rule_limited_to_a_segment_counts_in_the_campaign_simulation(history):
    """Without the campaign a member of the segment earns its programme bonus; a campaign rule
    that does not stack and wins displaces it, so the campaign costs less than its own bonus."""
    vip = EarningRuleFactory(name="VIP", kind="bonus", bonus_points=30, stacks=False)
    vip.segments.add(history["segment"])
    campaign = draft(
        segment=history["segment"], rules=({"bonus_points": 10, "stacks": False, "priority": 9},)
    )
    report = campaign_simulate(campaign=campaign, first=past(1), last=past(10))
    # Anna and Bram (Gold, in the segment) made 4 purchases: 10 instead of 30 on each, and
    # Gold's x1.5 on top of the 20 fewer: -30 a purchase.
    assert report.points == 40
    assert report.extra_points == -120
