"""The dashboard: daily rows computed from a known history, the period maths, what each role
sees, and that the page reads only rows (its query count does not grow with history)."""

from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.forms.models import model_to_dict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns.models import Campaign, CampaignResult
from campaigns.services import event_record
from ledger import services as ledger_services
from ledger.models import Purchase
from loyalty_site.dashboard import days as dashboard_days
from loyalty_site.dashboard.panels import change
from loyalty_site.dashboard.periods import Period, period_figures, top_rewards
from loyalty_site.models import DashboardDay, DashboardRewardDay
from members.services import member_enrol
from rewards.services import redemption_redeem
from tests.campaigns.factories import EngagementKindFactory
from tests.rewards.factories import RewardFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]


def local(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(settings.TIME_ZONE))


@pytest.fixture
def today():
    return dashboard_days.local_today()


@pytest.fixture
def day(today):
    return today - timedelta(days=10)


@pytest.fixture
def history(day, staff_user):
    """Two members' day: earn, redeem (a reward), expire, adjust, enrol, a return into debt,
    purchases in two currencies and two NPS answers."""
    agent = staff_user("Customer service")
    anna = member_enrol(
        email="anna@example.nl", first_name="Anna", enrolled_at=local(day, 8) - timedelta(days=5)
    )
    # The day before: 200 points that expire at noon on the day.
    ledger_services.points_earn(
        member=anna,
        points=200,
        reason="welcome",
        at=local(day - timedelta(days=1), 10),
        expires_at=local(day, 12),
    )
    bob = member_enrol(email="bob@example.nl", first_name="Bob", enrolled_at=local(day, 9))
    ledger_services.points_earn(member=anna, points=100, reason="purchase", at=local(day, 10))
    reward = RewardFactory(points=50)
    redemption_redeem(member=anna, reward=reward, now=local(day, 11))
    ledger_services.points_expire(now=local(day, 13), member=anna)  # 150 left of the 200
    earn = ledger_services.points_earn(
        member=bob, points=40, reason="purchase", at=local(day, 10, 30)
    )
    ledger_services.points_adjust(
        member=bob, points=20, reason="Goodwill", actor=agent, at=local(day, 11)
    )
    ledger_services.points_redeem(member=bob, points=50, reason="discount", at=local(day, 12))
    ledger_services.points_reverse(entry=earn, reason="returned", at=local(day, 14))  # 10 - 40
    for i, (amount, currency, status) in enumerate(
        [("12.50", "EUR", "recorded"), ("5.00", "USD", "recorded"), ("99.00", "EUR", "rejected")]
    ):
        Purchase.objects.create(
            member=anna,
            channel="pos",
            external_id=f"P{i}",
            amount=Decimal(amount),
            currency=currency,
            occurred_at=local(day, 15),
            status=status,
        )
    survey = EngagementKindFactory(code="survey", points=0, collects_nps=True, limit_count=None)
    for member, score in [(anna, 9), (bob, 3)]:
        event_record(
            member=member, kind=survey, reference=f"S-{member.pk}", score=score, at=local(day, 16)
        )
    return {"anna": anna, "bob": bob, "reward": reward}


def test_a_days_figures_on_a_known_history(history, day):
    dashboard_days.days_refresh(since=day - timedelta(days=1), until=day)
    before = DashboardDay.objects.get(day=day - timedelta(days=1))
    assert (before.points_issued, before.points_outstanding, before.enrolments) == (200, 200, 0)
    row = DashboardDay.objects.get(day=day)
    assert row.enrolments == 1
    assert row.active_members == 2 and row.active_members_30d == 2
    assert row.points_issued == 140
    assert row.points_redeemed == 100  # the reward's 50 and Bob's 50
    assert row.points_expired == 150
    assert row.points_adjusted == 20
    assert row.points_reversed == -40
    # Anna 200 + 100 - 50 - 150 = 100; Bob 40 + 20 - 50 - 40 = -30: in debt, not outstanding.
    assert row.points_outstanding == 100
    assert row.members_in_debt == 1
    assert row.redemptions == 1
    assert row.purchases == 2 and row.revenue == Decimal("12.50") and row.currency == "EUR"
    assert (row.nps_responses, row.nps_promoters, row.nps_detractors) == (2, 1, 1)
    rewards = list(
        DashboardRewardDay.objects.filter(day=day).values("reward", "redemptions", "points")
    )
    assert rewards == [{"reward": history["reward"].pk, "redemptions": 1, "points": 50}]


def test_the_stocks_chain_matches_a_sum_over_every_account(history, day):
    # Computed from the day before's row, or from scratch: the same end-of-day stocks.
    dashboard_days.days_refresh(since=day - timedelta(days=1), until=day)
    chained = DashboardDay.objects.get(day=day)
    DashboardDay.objects.filter(day=day - timedelta(days=1)).delete()
    scratch = dashboard_days.day_refresh(day=day)
    assert (scratch.points_outstanding, scratch.members_in_debt) == (
        chained.points_outstanding,
        chained.members_in_debt,
    )


def test_refreshing_a_day_again_gives_the_same_row(history, day):
    def snapshot():
        row = model_to_dict(DashboardDay.objects.get(day=day), exclude=["id", "computed_at"])
        rewards = list(DashboardRewardDay.objects.filter(day=day).values("reward", "redemptions"))
        return row, rewards

    dashboard_days.days_refresh(since=day - timedelta(days=1), until=day)
    first = snapshot()
    dashboard_days.days_refresh(since=day - timedelta(days=1), until=day)
    assert snapshot() == first
    assert DashboardDay.objects.filter(day=day).count() == 1


def _members_with_earns(count, day):
    for i in range(count):
        member = member_enrol(email=f"m{i}-{count}@example.nl", enrolled_at=local(day, 9))
        ledger_services.points_earn(member=member, points=10 + i, reason="x", at=local(day, 10))
        Purchase.objects.create(
            member=member,
            channel="pos",
            external_id=f"Q{count}-{i}",
            amount=Decimal(1),
            currency="EUR",
            occurred_at=local(day, 10),
        )


def test_a_days_computation_is_set_based(day):
    # The same number of queries for 2 members and for 25: nothing loops over members.
    _members_with_earns(2, day)
    dashboard_days.day_refresh(day=day - timedelta(days=1))
    dashboard_days.day_refresh(day=day)  # the row exists: both runs below update it
    with CaptureQueriesContext(connection) as few:
        dashboard_days.day_refresh(day=day)
    _members_with_earns(25, day)
    with CaptureQueriesContext(connection) as many:
        dashboard_days.day_refresh(day=day)
    assert len(many.captured_queries) == len(few.captured_queries)
    assert DashboardDay.objects.get(day=day).active_members == 27


def test_active_members_are_the_buyers_and_earners_each_once(day):
    """A member who bought without earning, one who earned without buying, one who did both
    twice: three; a rejected purchase and yesterday's earn make no one active."""

    def purchase(member, n, status="recorded"):
        Purchase.objects.create(
            member=member,
            channel="pos",
            external_id=f"A{n}",
            amount=Decimal(1),
            currency="EUR",
            occurred_at=local(day, 12),
            status=status,
        )

    buyer, earner, both, rejected, yesterday = (
        member_enrol(email=f"{name}@example.nl", enrolled_at=local(day, 9) - timedelta(days=2))
        for name in ("buyer", "earner", "both", "rejected", "yesterday")
    )
    purchase(buyer, 1)
    ledger_services.points_earn(member=earner, points=5, reason="x", at=local(day, 10))
    for n in (2, 3):
        purchase(both, n)
        ledger_services.points_earn(member=both, points=5, reason="x", at=local(day, 10 + n))
    purchase(rejected, 4, status="rejected")
    ledger_services.points_earn(
        member=yesterday, points=5, reason="x", at=local(day, 10) - timedelta(days=1)
    )
    start, end = dashboard_days.day_start(day), dashboard_days.day_start(day + timedelta(days=1))
    assert dashboard_days._active_members(start, end) == 3


def test_the_scheduled_refresh_does_yesterday_and_today_and_repairs_a_gap(today):
    from loyalty_site.tasks import dashboard_refresh

    assert dashboard_refresh() == 2
    assert set(DashboardDay.objects.values_list("day", flat=True)) == {
        today,
        today - timedelta(days=1),
    }
    # A row computed before its day ended (the worker was down since): computed again.
    stale = today - timedelta(days=5)
    DashboardDay.objects.create(day=stale, currency="EUR", computed_at=local(stale, 12))
    assert dashboard_refresh() == 6
    assert DashboardDay.objects.filter(day__gte=stale).count() == 6


def test_the_refresh_command_backfills_a_range(day, capsys):
    from django.core.management import call_command

    call_command(
        "dashboard_refresh", since=str(day), until=str(day + timedelta(days=2)), quiet=True
    )
    assert DashboardDay.objects.filter(day__range=(day, day + timedelta(days=2))).count() == 3
    assert "3 days refreshed" in capsys.readouterr().out


def _rows(start, count, **values):
    DashboardDay.objects.bulk_create(
        DashboardDay(day=start + timedelta(days=i), currency="EUR", **values) for i in range(count)
    )


def test_a_period_is_compared_with_the_previous_one_of_the_same_length(today):
    yesterday = today - timedelta(days=1)
    period = Period(start=yesterday - timedelta(days=6), end=yesterday)
    assert period.previous() == Period(
        start=yesterday - timedelta(days=13), end=yesterday - timedelta(days=7)
    )
    _rows(period.previous().start, 7, points_issued=10, points_redeemed=5, points_outstanding=70)
    _rows(
        period.start, 7, points_issued=20, points_redeemed=5, points_outstanding=140, enrolments=1
    )
    figures = period_figures(period, today=today)
    assert not figures.live
    assert figures.current["points_issued"] == 140 and figures.before["points_issued"] == 70
    assert figures.current["points_outstanding"] == 140  # a stock: its last day, not a sum
    assert figures.current.redemption_rate == 25.0 and figures.before.redemption_rate == 50.0
    assert change(140, 70, "count") == {"text": "▲ 100.0 %", "direction": "up"}
    assert change(35, 35, "count")["direction"] == ""
    assert change(5, 0, "count") == {"text": "–", "direction": ""}  # nothing to divide by
    assert change(25.0, 50.0, "percent") == {"text": "▼ 25.0 pt", "direction": "down"}
    assert change(None, 3, "score")["text"] == "–"


def test_todays_figures_are_live(today, staff_user):
    _rows(today - timedelta(days=3), 3, points_outstanding=0)
    member = member_enrol(email="now@example.nl")
    ledger_services.points_earn(member=member, points=75, reason="today")
    figures = period_figures(Period(start=today - timedelta(days=6), end=today), today=today)
    assert figures.live
    assert figures.current["points_issued"] == 75
    assert figures.current["points_outstanding"] == 75
    assert figures.current["enrolments"] == 1


def test_top_rewards_rank_the_periods_redemptions(today):
    popular, other = RewardFactory(name_en="Coffee"), RewardFactory(name_en="Tote bag")
    DashboardRewardDay.objects.create(
        day=today - timedelta(days=2), reward=popular, redemptions=4, points=400
    )
    DashboardRewardDay.objects.create(
        day=today - timedelta(days=40), reward=other, redemptions=9, points=900
    )
    DashboardRewardDay.objects.create(
        day=today - timedelta(days=3), reward=other, redemptions=1, points=100
    )
    member = member_enrol(email="rich@example.nl")
    ledger_services.points_earn(member=member, points=1000, reason="x")
    redemption_redeem(member=member, reward=other)  # today, live
    ranked = top_rewards(Period(start=today - timedelta(days=6), end=today), today=today)
    assert [(r.reward.name_en, r.redemptions) for r in ranked] == [("Coffee", 4), ("Tote bag", 2)]


# --- the page ----------------------------------------------------------------------------


def panels_of(html):
    import re

    return set(re.findall(r'data-panel="([a-z-]+)"', html))


def figures_of(html):
    import re

    return set(re.findall(r'data-figure="([a-z_0-9]+)"', html))


@pytest.mark.parametrize("role", ROLES)
def test_the_dashboard_renders_for_every_role_without_inline_code(client, staff_user, role):
    client.force_login(staff_user(role, first_name="Robin"))
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Welcome, Robin" in html
    assert_no_unmarked_inline_code(html, None)


def test_each_role_sees_the_panels_its_permissions_cover(client, staff_user):
    seen = {}
    for role in ROLES:
        client.force_login(staff_user(role))
        html = client.get("/").content.decode()
        seen[role] = (panels_of(html), figures_of(html), html)
    marketing, service, finance, admin = (seen[r] for r in ROLES)
    # Marketing: members, rewards, campaigns, NPS; no points, no work queues.
    assert {"campaigns", "nps", "rewards"} <= marketing[0]
    assert not {"queues", "liability"} & marketing[0]
    assert "active_members_30d" in marketing[1] and "points_issued" not in marketing[1]
    assert "Adjustments awaiting approval" not in marketing[2]
    # Customer service: the queues and the members figures; no liability, no campaigns.
    assert "queues" in service[0] and not {"liability", "campaigns", "nps"} & service[0]
    assert "Purchases to review" in service[2] and "Engagement events to moderate" in service[2]
    assert "enrolments" in service[1] and "points_outstanding" not in service[1]
    # Finance: points, outstanding, members in debt and its approvals; no marketing panels.
    assert "liability" in finance[0] and not {"campaigns", "nps", "rewards"} & finance[0]
    assert {"points_issued", "points_redeemed", "points_expired", "members_in_debt"} <= finance[1]
    assert "enrolments" not in finance[1]
    assert "Adjustments awaiting approval" in finance[2] and "Purchases to review" not in finance[2]
    # The Administrator sees everything.
    assert {"queues", "liability", "campaigns", "nps", "rewards"} <= admin[0]
    assert figures_of(admin[2]) >= marketing[1] | service[1] | finance[1]


def test_a_user_without_a_role_is_told_so(client):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True))
    html = client.get("/").content.decode()
    assert "Your account has no role yet" in html
    assert not panels_of(html) and not figures_of(html)


def test_the_work_queues_count_and_link(client, staff_user, history):
    from ledger.models import AdjustmentRequest

    agent = staff_user("Customer service")
    ledger_services.points_adjust(
        member=history["anna"],
        points=settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD + 1,
        reason="Big one",
        actor=agent,
    )
    assert AdjustmentRequest.objects.filter(status="pending").count() == 1
    client.force_login(staff_user("Finance"))
    html = client.get("/").content.decode()
    assert '<span class="queue-count">1</span> Adjustments awaiting approval' in html


def test_running_campaigns_show_their_stored_lift(client, staff_user, today):
    campaign = Campaign.objects.create(
        name="Double coffee",
        kind=Campaign.Kind.EARNING,
        status=Campaign.Status.ACTIVE,
        starts_at=timezone.now() - timedelta(days=3),
        ends_at=timezone.now() + timedelta(days=3),
    )
    common = {
        "campaign": campaign,
        "window": "campaign",
        "starts_at": campaign.starts_at,
        "ends_at": campaign.ends_at,
    }
    CampaignResult.objects.create(
        **common,
        metric="conversion",
        control_n=1000,
        control_sum=100,
        control_sum_of_squares=100,
        treated_n=9000,
        treated_sum=1350,
        treated_sum_of_squares=1350,
    )
    client.force_login(staff_user("Marketing"))
    html = client.get("/").content.decode()
    assert "Double coffee" in html
    assert "+50.0 %" in html  # 15 % against 10 %
    assert "No campaign is running" not in html


def test_the_period_chooser_changes_the_figures(client, staff_user, today):
    _rows(today - timedelta(days=60), 50, points_issued=10)
    client.force_login(staff_user("Finance"))
    week = client.get("/", {"period": "7d"}).context
    quarter = client.get("/", {"period": "90d"}).context
    custom = client.get(
        "/",
        {
            "period": "custom",
            "start": str(today - timedelta(days=20)),
            "end": str(today - timedelta(days=11)),
        },
    ).context
    issued = {f["key"]: f["value"] for f in week["figures"]}["points_issued"]
    assert issued == "0"
    assert {f["key"]: f["value"] for f in quarter["figures"]}["points_issued"] == "500"
    assert {f["key"]: f["value"] for f in custom["figures"]}["points_issued"] == "100"
    assert custom["period"] == Period(
        start=today - timedelta(days=20), end=today - timedelta(days=11)
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"period": "custom", "start": "2026-05-10", "end": "2026-05-01"}, "start"),
        ({"period": "custom", "start": "not a date"}, "start"),
        ({"period": "custom", "end": "2026-05-01"}, "start"),
        ({"period": "custom", "start": "2020-01-01", "end": "2099-01-01"}, "end"),
        ({"period": "custom", "start": "2000-01-01", "end": "2010-01-01"}, "start"),
        ({"period": "forever"}, "period"),
    ],
)
def test_a_bad_period_is_a_form_error_and_shows_the_default(
    client, staff_user, today, params, field
):
    client.force_login(staff_user("Administrator"))
    response = client.get("/", params)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert response.context["period"] == Period(start=today - timedelta(days=29), end=today)
    assert 'class="message error"' in response.content.decode()
    assert not DashboardDay.objects.exists()  # reading the page writes nothing


def _a_busy_programme(today, count):
    _rows(today - timedelta(days=count), count, points_issued=5, enrolments=1)
    rewards = [RewardFactory() for _ in range(7)]
    DashboardRewardDay.objects.bulk_create(
        DashboardRewardDay(
            day=today - timedelta(days=1 + i % count),
            reward=rewards[i % 7],
            redemptions=1,
            points=10,
        )
        for i in range(20)
    )
    for i in range(3):
        Campaign.objects.create(
            name=f"C{count}-{i}", kind="earning", status="active", starts_at=timezone.now()
        )


@pytest.mark.parametrize("count", [3, 400])
def test_the_page_reads_a_bounded_number_of_queries(
    client, staff_user, today, count, django_assert_max_num_queries
):
    _a_busy_programme(today, count)
    client.force_login(staff_user("Administrator"))
    with django_assert_max_num_queries(32):
        response = client.get("/", {"period": "12m"})
    assert response.status_code == 200
    assert len(response.context["top_rewards"]) == 5


def test_an_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_campaign_lifts_are_read_in_one_query(django_assert_num_queries):
    from campaigns.results import campaigns_lifts

    now = timezone.now()
    campaigns = [
        Campaign.objects.create(name=f"C{i}", kind="earning", status="active", starts_at=now)
        for i in range(3)
    ]
    CampaignResult.objects.create(
        campaign=campaigns[0],
        window="campaign",
        metric="revenue",
        starts_at=now,
        ends_at=now,
        control_n=10,
        control_sum=100,
        control_sum_of_squares=1200,
        treated_n=90,
        treated_sum=1080,
        treated_sum_of_squares=14000,
    )
    with django_assert_num_queries(1):
        lifts = campaigns_lifts(campaigns, metrics=("revenue", "conversion"))
    assert set(lifts) == {c.pk for c in campaigns}
    assert lifts[campaigns[0].pk]["revenue"].relative == pytest.approx(0.2)
    assert lifts[campaigns[1].pk] == {}


def test_demo_data_fills_the_dashboards_history(client, staff_user):
    from django.core.management import call_command

    call_command("demo_data", members=4)
    assert DashboardDay.objects.count() > 300  # the demo's year
    client.force_login(staff_user("Finance"))
    response = client.get("/", {"period": "12m"})
    issued = {f["key"]: f["value"] for f in response.context["figures"]}["points_issued"]
    assert issued != "0"


def _accounts_today(today, count):
    """`count` members with history before today and movements today, one of them in debt."""
    for i in range(count):
        member = member_enrol(email=f"live{i}-{count}@example.nl")
        earn = ledger_services.points_earn(
            member=member, points=50 + i, reason="before", at=local(today - timedelta(days=3), 9)
        )
        ledger_services.points_earn(member=member, points=5, reason="today")
        if i == 0:
            ledger_services.points_redeem(member=member, points=55, reason="spent")
            ledger_services.points_reverse(entry=earn, reason="returned")  # -50: in debt


@pytest.mark.parametrize("yesterday", ["final", "computed before it ended", "missing"])
def test_todays_live_stocks_equal_the_sum_over_every_accounts_entries(today, yesterday):
    _accounts_today(today, 4)
    if yesterday == "final":
        # Today's live stocks build on it, from the accounts that moved today.
        dashboard_days.day_refresh(day=today - timedelta(days=1))
    elif yesterday == "computed before it ended":
        # Not a base: the live figures read every stored balance instead.
        DashboardDay.objects.create(
            day=today - timedelta(days=1),
            currency="EUR",
            points_outstanding=999,
            members_in_debt=9,
            computed_at=local(today - timedelta(days=1), 12),
        )
    live = period_figures(Period(start=today, end=today), today=today).current
    scratch = dashboard_days.day_compute(today, previous=None, rolling=False)["figures"]
    assert (live["points_outstanding"], live["members_in_debt"]) == (
        scratch["points_outstanding"],
        scratch["members_in_debt"],
    )
    # 51 + 5, 52 + 5, 53 + 5 outstanding; the first member is at 50 + 5 - 55 - 50 = -50.
    assert (live["points_outstanding"], live["members_in_debt"]) == (171, 1)
    assert live["points_issued"] == 20


@pytest.mark.parametrize("yesterday", [True, False])
def test_todays_live_figures_read_a_fixed_number_of_queries_and_no_account_history(
    today, yesterday
):
    if yesterday:
        dashboard_days.day_refresh(day=today - timedelta(days=1))

    def live_queries():
        with CaptureQueriesContext(connection) as captured:
            period_figures(Period(start=today, end=today), today=today)
        return [q["sql"] for q in captured.captured_queries]

    _accounts_today(today, 2)
    few = live_queries()
    _accounts_today(today, 20)
    many = live_queries()
    assert len(many) == len(few) <= 12
    # Every read of the entries is bounded to today's (the created_at index), none sums an
    # account's whole history.
    entry_reads = [sql for sql in many if '"ledger_entry"' in sql]
    assert entry_reads
    assert all('"created_at" >=' in sql for sql in entry_reads)
