"""Campaign results (issue 13, item 4): per group and window the sums stored from one aggregate
query, compared with hand-computed values; the lifts from campaigns.stats; the follow-up window;
the sample-ratio warning; a refresh run twice, or twice at once."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection

from campaigns import stats, tasks
from campaigns.models import (
    Campaign,
    CampaignMessage,
    CampaignOffer,
    CampaignResult,
    SegmentSnapshot,
    SegmentSnapshotMember,
)
from campaigns.results import campaign_results
from campaigns.services import campaign_results_refresh, campaigns_results_due
from ledger import services as ledger_services
from rewards.services import redemption_redeem
from tests.campaigns.factories import EarningRuleFactory
from tests.campaigns.offering import active_campaign, buy, in_control, salt_splitting
from tests.campaigns.purchasing import T0
from tests.factories import MemberFactory
from tests.rewards.factories import RewardFactory

START = T0 - timedelta(days=10)
END = T0
AFTER = END + timedelta(days=40)  # the 30-day follow-up is over


def at(moment, action):
    with time_machine.travel(moment, tick=False):
        return action()


@pytest.fixture
def world(db):
    """Four treated and two control members of an offer campaign over [START, END), with a
    purchase history whose sums are worked out by hand in the tests."""
    EarningRuleFactory(rate=Decimal(1))  # 1 point per euro: points = revenue
    a, b, c, d, e, f = (MemberFactory() for _ in range(6))
    salt = salt_splitting([a, b, c, d], [e, f])
    campaign = at(START, lambda: active_campaign(
        starts_at=START, ends_at=END, control_basis_points=5000, salt=salt,
    ))  # fmt: skip
    offer = RewardFactory(points=20, offer_only=True)
    CampaignOffer.objects.create(campaign=campaign, reward=offer, rule="fallback")
    late = MemberFactory()  # enrolled after the audience was frozen: never counted

    def purchase(member, name, amount, when):
        at(when, lambda: buy(member, name, at=when, amount=amount))

    purchase(a, "a0", "99.00", START - timedelta(days=1))  # before the campaign
    purchase(a, "a1", "10.00", START + timedelta(days=1))
    purchase(a, "a2", "30.00", START + timedelta(days=2))
    purchase(b, "b1", "50.00", START + timedelta(days=3))
    purchase(e, "e1", "10.00", START + timedelta(days=4))
    purchase(late, "z1", "70.00", START + timedelta(days=4))
    # Follow-up window [END, END + 30 days).
    purchase(a, "a3", "20.00", END + timedelta(days=1))
    purchase(c, "c1", "5.00", END + timedelta(days=2))
    purchase(d, "d1", "80.00", END + timedelta(days=31))  # after the follow-up
    at(START + timedelta(days=5), lambda: redemption_redeem(member=b, reward=offer, offered=True))
    at(END + timedelta(days=3), lambda: redemption_redeem(member=e, points=5))
    return campaign, (a, b, c, d), (e, f)


def stored(campaign):
    return {
        (r.window, r.metric): (
            (r.treated_n, r.treated_sum, r.treated_sum_of_squares),
            (r.control_n, r.control_sum, r.control_sum_of_squares),
        )
        for r in CampaignResult.objects.filter(campaign=campaign)
    }


# (treated n, Σ, Σ²), (control n, Σ, Σ²) worked out from the purchases above.
EXPECTED = {
    ("campaign", "reach"): ((4, 4, 4), (2, 2, 2)),
    ("campaign", "conversion"): ((4, 2, 2), (2, 1, 1)),
    ("campaign", "purchases"): ((4, 3, 2**2 + 1), (2, 1, 1)),
    ("campaign", "revenue"): ((4, 90, 40**2 + 50**2), (2, 10, 100)),
    ("campaign", "points"): ((4, 90, 40**2 + 50**2), (2, 10, 100)),
    ("campaign", "redemption"): ((4, 1, 1), (2, 0, 0)),
    ("campaign", "offer_redemption"): ((4, 1, 1), (2, 0, 0)),
    ("follow_up", "reach"): ((4, 4, 4), (2, 2, 2)),
    ("follow_up", "conversion"): ((4, 2, 2), (2, 0, 0)),
    ("follow_up", "purchases"): ((4, 2, 2), (2, 0, 0)),
    ("follow_up", "revenue"): ((4, 25, 20**2 + 5**2), (2, 0, 0)),
    ("follow_up", "points"): ((4, 25, 20**2 + 5**2), (2, 0, 0)),
    ("follow_up", "redemption"): ((4, 0, 0), (2, 1, 1)),
    ("follow_up", "offer_redemption"): ((4, 0, 0), (2, 0, 0)),
}


@pytest.mark.django_db
def test_stored_summaries_match_the_hand_computed_sums(world, django_assert_max_num_queries):
    campaign, _treated, _control = world
    with django_assert_max_num_queries(8):  # measure once; lock, delete, insert
        rows = campaign_results_refresh(campaign=campaign, now=AFTER)
    assert len(rows) == len(EXPECTED)
    assert stored(campaign) == {
        key: tuple((n, Decimal(s), Decimal(q)) for n, s, q in groups)
        for key, groups in EXPECTED.items()
    }
    window = {r.window: (r.starts_at, r.ends_at) for r in rows}
    assert window == {
        "campaign": (START, END),
        "follow_up": (END, END + timedelta(days=30)),
    }
    assert {r.computed_at for r in rows} == {AFTER}


@pytest.mark.django_db
def test_while_running_only_the_campaign_window_up_to_now(world):
    campaign, _treated, _control = world
    now = START + timedelta(days=2, hours=12)
    Campaign.objects.filter(pk=campaign.pk).update(status="active")
    rows = campaign_results_refresh(campaign=campaign, now=now)
    assert {r.window for r in rows} == {"campaign"}
    assert {r.ends_at for r in rows} == {now}
    summary = stored(campaign)
    assert summary["campaign", "revenue"] == ((4, Decimal(40), Decimal(1600)), (2, 0, 0))


@pytest.mark.django_db
def test_follow_up_days_come_from_the_setting(world, settings):
    settings.LOYALTY_CAMPAIGN_FOLLOW_UP_DAYS = 40
    campaign, _treated, _control = world
    campaign_results_refresh(campaign=campaign, now=AFTER + timedelta(days=5))
    # d's purchase on day 31 after the end is now inside the follow-up.
    assert stored(campaign)["follow_up", "revenue"][0] == (4, Decimal(105), Decimal(6825))


@pytest.mark.django_db
def test_lifts_are_the_statistics_modules_output(world):
    campaign, _treated, _control = world
    campaign_results_refresh(campaign=campaign, now=AFTER)
    results = campaign_results(campaign)
    by_key = {(w.window, m.metric): m for w in results.windows for m in w.metrics}
    revenue = by_key["campaign", "revenue"]
    expected = stats.mean_lift(stats.MeanGroup(2, 10, 100), stats.MeanGroup(4, 90, 4100))
    assert (revenue.control_mean, revenue.treated_mean) == (5.0, 22.5)
    assert revenue.absolute == pytest.approx(17.5)
    assert revenue.absolute_ci == expected.absolute_ci
    assert revenue.relative == expected.relative == pytest.approx(3.5)
    assert revenue.relative_ci == expected.relative_ci
    assert revenue.p_value == expected.p_value
    conversion = by_key["campaign", "conversion"]
    expected = stats.proportion_lift(stats.ProportionGroup(2, 1), stats.ProportionGroup(4, 2))
    assert conversion.kind == "proportion"
    assert (conversion.absolute, conversion.p_value) == (expected.absolute, expected.p_value)
    assert by_key["campaign", "reach"].kind == "count"
    assert by_key["campaign", "reach"].absolute is None
    assert [w.window for w in results.windows] == ["campaign", "follow_up"]
    assert results.computed_at == AFTER
    assert "Welch" in results.method
    assert results.sample_ratio is not None and not results.sample_ratio_mismatch


@pytest.mark.django_db
def test_sample_ratio_mismatch_warns_on_a_skewed_split():
    members = MemberFactory.create_batch(80)
    campaign = active_campaign(starts_at=T0, ends_at=T0 + timedelta(days=5))
    campaign.control_basis_points = 5000
    campaign.save()
    control = [m for m in members if in_control(campaign, m)]
    treated = [m for m in members if not in_control(campaign, m)]
    assert len(control) >= 30 and len(treated) >= 3
    # The audience as a buggy send would leave it: nearly all control, few treated.
    skewed = SegmentSnapshot.objects.create(definition={"all": []}, taken_at=T0, size=33)
    SegmentSnapshotMember.objects.bulk_create(
        [SegmentSnapshotMember(snapshot=skewed, member=m) for m in control[:30] + treated[:3]]
    )
    old = campaign.audience
    campaign.audience = skewed
    campaign.save()
    old.delete()
    campaign_results_refresh(campaign=campaign, now=T0 + timedelta(days=1))
    results = campaign_results(campaign)
    assert results.sample_ratio.mismatch and results.sample_ratio_mismatch
    assert results.sample_ratio.p_value < 0.001
    assert results.sample_ratio == stats.sample_ratio_mismatch(30, 3, 0.5)


@pytest.mark.django_db
def test_a_campaign_without_a_control_group_has_no_ratio_check(world):
    campaign, _treated, _control = world
    Campaign.objects.filter(pk=campaign.pk).update(control_basis_points=0)
    campaign.refresh_from_db()
    campaign_results_refresh(campaign=campaign, now=AFTER)
    results = campaign_results(campaign)
    assert results.sample_ratio is None
    assert stored(campaign)["campaign", "reach"] == ((6, 6, 6), (0, 0, 0))


@pytest.mark.django_db
def test_not_started_has_no_results_and_a_message_campaign_no_offer_metric(world):
    campaign, _treated, _control = world
    assert campaign_results_refresh(campaign=campaign, now=START - timedelta(days=1)) == []
    assert campaign_results(campaign).windows == []
    Campaign.objects.filter(pk=campaign.pk).update(kind="message")
    campaign.refresh_from_db()
    campaign_results_refresh(campaign=campaign, now=AFTER)
    assert "offer_redemption" not in {metric for _w, metric in stored(campaign)}


@pytest.mark.django_db
def test_the_task_run_twice_gives_the_same_rows(world):
    campaign, _treated, _control = world
    with time_machine.travel(AFTER, tick=False):
        assert tasks.results_refresh(campaign.pk) == 1
        first = stored(campaign)
        assert tasks.results_refresh(campaign.pk) == 1
    assert stored(campaign) == first
    assert CampaignResult.objects.filter(campaign=campaign).count() == len(EXPECTED)
    assert tasks.results_refresh(10**9) == 0


@pytest.mark.django_db
def test_due_campaigns_are_running_ones_and_ended_ones_until_their_follow_up_is_seen(world):
    campaign, _treated, _control = world
    draft = Campaign.objects.create(name="Draft", kind="offer")
    assert campaigns_results_due(now=AFTER) == [campaign.pk]
    Campaign.objects.filter(pk=campaign.pk).update(status="ended")
    assert campaigns_results_due(now=END + timedelta(days=5)) == [campaign.pk]
    campaign_results_refresh(campaign=campaign, now=END + timedelta(days=5))
    assert campaigns_results_due(now=END + timedelta(days=6)) == [campaign.pk]
    # The daily task (eager in tests) refreshes every due campaign, one task each.
    with time_machine.travel(AFTER, tick=False):
        assert tasks.results_refresh() == 1
    assert campaigns_results_due(now=AFTER + timedelta(days=1)) == []
    assert draft.pk not in campaigns_results_due(now=AFTER)


@pytest.mark.django_db(transaction=True)
def test_two_refreshes_at_once_leave_one_set_of_rows():
    members = MemberFactory.create_batch(6)
    campaign = active_campaign(starts_at=T0, ends_at=T0 + timedelta(days=5))
    ledger_services.points_earn(member=members[0], points=5, reason="test")
    barrier = threading.Barrier(2)
    errors = []

    def refresh():
        try:
            barrier.wait()
            campaign_results_refresh(campaign=campaign, now=T0 + timedelta(days=10))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert CampaignResult.objects.filter(campaign=campaign).count() == 2 * 7


@pytest.mark.django_db
def test_a_message_campaigns_reach_is_the_messages_delivered(world):
    campaign, (a, b, c, _d), (e, _f) = world
    Campaign.objects.filter(pk=campaign.pk).update(kind="message")
    campaign.refresh_from_db()
    sent = {"status": "sent", "sent_at": START + timedelta(hours=1)}
    CampaignMessage.objects.create(campaign=campaign, member=a, channel="email", **sent)
    CampaignMessage.objects.create(campaign=campaign, member=a, channel="sms", **sent)
    CampaignMessage.objects.create(campaign=campaign, member=b, channel="email", **sent)
    CampaignMessage.objects.create(campaign=campaign, member=c, channel="email", status="failed")
    CampaignMessage.objects.create(
        campaign=campaign, member=e, channel="email", status="suppressed", suppression="control"
    )
    campaign_results_refresh(campaign=campaign, now=AFTER)
    summary = stored(campaign)
    assert summary["campaign", "reach"] == ((4, Decimal(3), Decimal(2**2 + 1)), (2, 0, 0))
    assert summary["follow_up", "reach"] == ((4, 0, 0), (2, 0, 0))
