"""Marketing's earning-rule pages: the list, the editor with its pickers, the simulator job."""

import re
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from campaigns import selectors, simulator
from campaigns.forms import rule_draft_saved
from campaigns.models import EarningRule, Segment
from campaigns.services import purchase_record, rule_save
from ledger import selectors as ledger_selectors
from loyalty_site.errors import DomainError
from members.models import AuditEntry, BackgroundJob, Tier
from tests.campaigns.campaigning import draft, running
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory, UserFactory
from tests.test_csp import assert_no_unmarked_inline_code

ROLES = ["Marketing", "Customer service", "Finance", "Administrator"]
MAY = {"Marketing", "Administrator"}


@pytest.fixture
def marketer(client, staff_user):
    user = staff_user("Marketing")
    client.force_login(user)
    return user


def rule_data(**fields) -> dict:
    """What the editor posts for a plain rule: a bonus of 50, no conditions."""
    data = {"name": "Weekend coffee", "description": "", "kind": "bonus", "rate": "0",
            "multiplier": "1", "bonus_points": "50", "rounding": "down", "cap_period": "month",
            "priority": "0", "stacks": "on", "active": "on", "reason": ""}  # fmt: skip
    data.update(fields)
    return data


def days_ago(days: int, hour: int = 12) -> datetime:
    local = timezone.localtime() - timedelta(days=days)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def buy(member, number: int, *, at, category="coffee", amount="10.00", store="ams"):
    return purchase_record(
        member=member, channel="pos", external_id=f"P{number}", amount=Decimal(amount),
        currency="EUR", occurred_at=at, store=store,
        lines=[{"sku": f"SKU-{category}", "category": category, "quantity": 1,
                "amount": Decimal(amount)}],
    )  # fmt: skip


# -- who may use the pages ----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_the_rule_pages_are_for_the_roles_that_manage_rules(client, staff_user, role):
    rule = EarningRuleFactory()
    client.force_login(staff_user(role))
    expected = 200 if role in MAY else 403
    assert client.get(reverse("rules")).status_code == expected
    assert client.get(reverse("rule-new")).status_code == expected
    assert client.get(reverse("rule-edit", args=[rule.pk])).status_code == expected
    assert client.get(reverse("rule-suggest", args=["skus"])).status_code == expected
    posted = client.post(reverse("rule-edit", args=[rule.pk]), rule_data(reason="x"))
    assert posted.status_code == (302 if role in MAY else 403)
    simulated = client.post(reverse("rule-simulate", args=[rule.pk]), {"mode": "saved"})
    assert simulated.status_code == (200 if role in MAY else 403)
    if role not in MAY:
        assert EarningRule.objects.get(pk=rule.pk).name == rule.name


@pytest.mark.django_db
def test_seeing_rules_is_not_changing_them_and_changing_is_not_simulating(client, roles):
    rule = EarningRuleFactory()
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_earningrule"))
    client.force_login(viewer)
    assert client.get(reverse("rules")).status_code == 200
    assert client.get(reverse("rule-edit", args=[rule.pk])).status_code == 403
    editor = UserFactory(is_staff=True)
    editor.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_earningrule", "change_earningrule"])
    )
    client.force_login(editor)
    page = client.get(reverse("rule-edit", args=[rule.pk]))
    assert page.status_code == 200 and "Simulate as saved" not in page.content.decode()
    assert client.get(reverse("rule-new")).status_code == 403  # no add permission
    refused = client.post(reverse("rule-simulate", args=[rule.pk]), {"mode": "saved"})
    assert refused.status_code == 403
    assert not BackgroundJob.objects.exists()


# -- the list ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_says_what_each_rule_gives_when_and_how_much_budget_is_used(client, marketer):
    gold = Tier.objects.create(name="Gold", rank=2, threshold=1000)
    weekend = EarningRuleFactory(
        name="Weekend coffee", kind="multiplier", multiplier=Decimal("2.00"),
        categories=["coffee"], days_of_week=[5, 6], time_from=time(7), time_until=time(10),
        budget_points=1000, budget_spent=250, cap_per_purchase=40,
        starts_at=datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    weekend.tiers.add(gold)
    EarningRuleFactory(name="Base", rate=Decimal("1.5000"), active=False)
    campaign = running(name="Win-back", rules=({"name": "Win-back bonus"},))
    page = client.get(reverse("rules"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "× 2 the base rate; at most 40 a purchase" in html
    assert "Categories: coffee; Tiers: Gold; Saturday, Sunday; 07:00 to 10:00" in html
    assert "250 / 1000" in html
    assert "1.5 points per EUR" in html and "Inactive" in html
    assert "Campaign: Win-back" in html and campaign.get_status_display() in html
    assert f'href="/rules/new/?copy={weekend.pk}"' in html
    assert_no_unmarked_inline_code(html, None)


@pytest.mark.django_db
def test_the_list_filters_by_active_kind_and_campaign(client, marketer):
    EarningRuleFactory(name="Base rate")
    EarningRuleFactory(name="Old bonus", kind="bonus", bonus_points=5, active=False)
    campaign = draft(name="Spring", rules=({"name": "Spring bonus"},))

    def names(**query):
        page = client.get(reverse("rules"), query)
        return sorted(row["rule"].name for row in page.context["rows"])

    assert names() == ["Base rate", "Old bonus", "Spring bonus"]
    assert names(active="no") == ["Old bonus"]
    assert names(kind="bonus") == ["Old bonus", "Spring bonus"]
    assert names(campaign=str(campaign.pk)) == ["Spring bonus"]
    assert names(campaign="none") == ["Base rate", "Old bonus"]
    assert names(kind="points") == ["Base rate", "Old bonus", "Spring bonus"]  # ignored


@pytest.mark.django_db
@pytest.mark.parametrize("count", [3, 50])
def test_the_list_answers_in_a_bounded_number_of_queries(
    client, marketer, django_assert_max_num_queries, count
):
    gold = Tier.objects.create(name="Gold", rank=2, threshold=1000)
    segment = Segment.objects.create(name="Coffee lovers")
    campaign = draft(name="Spring", rules=())
    for n in range(count):
        rule = EarningRuleFactory(campaign=campaign if n % 3 == 0 else None)
        rule.tiers.add(gold)
        rule.segments.add(segment)
    with django_assert_max_num_queries(12):
        page = client.get(reverse("rules"))
    assert len(page.context["rows"]) == min(count, 25)


# -- the editor ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_marketer_creates_a_rule_with_the_pickers(client, marketer):
    member = MemberFactory()
    buy(member, 1, at=days_ago(3), category="coffee", store="ams")
    buy(member, 2, at=days_ago(2), category="dairy", store="utr")
    gold = Tier.objects.create(name="Gold", rank=2, threshold=1000)
    segment = Segment.objects.create(name="Coffee lovers")
    page = client.get(reverse("rule-new"))
    html = page.content.decode()
    # The pickers offer what purchases hold: categories, stores, channels.
    for value in ("coffee", "dairy", "ams", "utr", "pos"):
        assert f'value="{value}"' in html
    assert 'type="time"' in html and 'type="datetime-local"' in html
    assert_no_unmarked_inline_code(html, None)

    response = client.post(
        reverse("rule-new"),
        rule_data(
            categories=["coffee"], categories_other="tea, coffee", stores=["ams"],
            channels=["pos"], channels_other="", skus_other="SKU-1, SKU-2 ,",
            days_of_week=["5", "6"], tiers=[str(gold.pk)], segments=[str(segment.pk)],
            time_from="22:00", time_until="02:00", min_spend="20", cap_per_member="100",
            cap_period="week", budget_points="5000", starts_at="2026-12-01T00:00",
            reason="Winter push",
        ),
    )  # fmt: skip
    assert response.status_code == 302, response.context["form"].errors
    rule = EarningRule.objects.get(name="Weekend coffee")
    assert response.url == reverse("rule-edit", args=[rule.pk])
    assert (rule.categories, rule.stores, rule.channels, rule.skus, rule.days_of_week) == (
        ["coffee", "tea"], ["ams"], ["pos"], ["SKU-1", "SKU-2"], [5, 6]
    )  # fmt: skip
    assert list(rule.tiers.all()) == [gold] and list(rule.segments.all()) == [segment]
    assert (rule.time_from, rule.time_until) == (time(22), time(2))  # spans midnight
    assert (rule.cap_per_member, rule.cap_period, rule.budget_points) == (100, "week", 5000)
    assert timezone.localtime(rule.starts_at).date().isoformat() == "2026-12-01"
    entry = AuditEntry.objects.get(action="earning_rule_create")
    assert (entry.actor, entry.reason) == (marketer, "Winter push")
    assert entry.details["rule_id"] == rule.pk
    # Shown again with the picked values ticked, "tea" among them although no purchase has it.
    html = client.get(response.url).content.decode()
    assert 'value="tea" checked' in html and 'value="SKU-1" checked' in html
    assert 'value="dairy">' in html  # offered, not ticked


@pytest.mark.django_db
def test_editing_a_rule_records_why_and_what_changed(client, marketer):
    rule = EarningRuleFactory(name="Weekend coffee", kind="bonus", rate=0, bonus_points=50,
                              categories=["coffee"], budget_points=1000)  # fmt: skip
    url = reverse("rule-edit", args=[rule.pk])
    missing = client.post(url, rule_data(categories=["coffee"], bonus_points="80"))
    assert missing.status_code == 400
    assert missing.context["form"].errors["reason"] == ["This field is required."]
    # Purchases spend the budget while the page is open: the save keeps their count.
    EarningRule.objects.filter(pk=rule.pk).update(budget_spent=300)
    response = client.post(
        url,
        rule_data(categories=[], bonus_points="80", budget_points="1000", reason="Too low"),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.bonus_points, rule.categories, rule.budget_spent) == (80, [], 300)
    entry = AuditEntry.objects.get(action="earning_rule_change")
    assert entry.reason == "Too low"
    assert entry.details == {"rule_id": rule.pk, "fields": ["bonus_points", "categories"]}
    # Saved again unchanged: nothing is written.
    client.post(url, rule_data(bonus_points="80", budget_points="1000", reason="Again"))
    assert AuditEntry.objects.filter(action="earning_rule_change").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"time_from": "10:00", "time_until": "10:00"}, "time_until",
         "The time window is empty: choose an end other than its start."),
        ({"bonus_points": "-5"}, "bonus_points",
         "Ensure this value is greater than or equal to 0."),
        ({"rate": "-1"}, "rate", "Ensure this value is greater than or equal to 0."),
        ({"multiplier": "0.5"}, "multiplier",
         "Ensure this value is greater than or equal to 1."),
        ({"starts_at": "2026-12-01T00:00", "ends_at": "2026-11-01T00:00"}, "ends_at",
         "The end must be after the start."),
        ({"days_of_week": ["7"]}, "days_of_week",
         "Select a valid choice. 7 is not one of the available choices."),
        ({"cap_per_purchase": "-1"}, "cap_per_purchase",
         "Ensure this value is greater than or equal to 0."),
        ({"name": ""}, "name", "This field is required."),
    ],
)  # fmt: skip
def test_bad_input_is_refused_on_its_field_and_nothing_is_saved(
    client, marketer, fields, field, message
):
    response = client.post(reverse("rule-new"), rule_data(**fields))
    assert response.status_code == 400
    assert response.context["form"].errors[field] == [message]
    assert '<ul class="errorlist"' in response.content.decode()
    assert not EarningRule.objects.exists() and not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_budget_below_what_was_spent_is_refused_on_its_field(client, marketer):
    rule = EarningRuleFactory(budget_points=1000, budget_spent=600)
    response = client.post(
        reverse("rule-edit", args=[rule.pk]), rule_data(budget_points="500", reason="Cut")
    )
    assert response.status_code == 400
    assert response.context["form"].errors["budget_points"] == [
        "The budget cannot be less than the 600 points already spent."
    ]
    rule.refresh_from_db()
    assert rule.budget_points == 1000 and not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_a_rule_of_a_campaign_that_is_no_longer_a_draft_is_read_only(client, marketer):
    campaign = running(name="Win-back", rules=({"name": "Win-back bonus", "bonus_points": 10},))
    rule = campaign.rules.get()
    url = reverse("rule-edit", args=[rule.pk])
    html = client.get(url).content.decode()
    assert "which is Active" in html
    assert re.search(r'<input [^>]*name="name" value="Win-back bonus"[^>]* disabled', html)
    assert 'name="reason"' not in html and ">Save</button>" not in html
    assert 'value="edited"' not in html and 'value="saved"' in html  # simulate, as saved only
    forged = client.post(url, rule_data(name="Hacked", bonus_points="999", reason="x"))
    assert forged.status_code == 409
    rule.refresh_from_db()
    assert (rule.name, rule.bonus_points) == ("Win-back bonus", 10)
    assert not AuditEntry.objects.filter(action__startswith="earning_rule").exists()
    # Nor can a programme rule be moved into it.
    other = EarningRuleFactory()
    moved = client.post(
        reverse("rule-edit", args=[other.pk]), rule_data(campaign=str(campaign.pk), reason="x")
    )
    assert moved.status_code == 400 and "campaign" in moved.context["form"].errors
    with pytest.raises(DomainError, match="no longer a draft"):
        other.campaign = campaign
        rule_save(rule=other, actor=marketer, reason="x")


@pytest.mark.django_db
def test_a_rule_of_a_draft_campaign_can_be_changed(client, marketer):
    campaign = draft(name="Spring", rules=({"name": "Spring bonus", "bonus_points": 10},))
    rule = campaign.rules.get()
    response = client.post(
        reverse("rule-edit", args=[rule.pk]),
        rule_data(name="Spring bonus", bonus_points="20", campaign=str(campaign.pk), reason="x"),
    )
    assert response.status_code == 302
    rule.refresh_from_db()
    assert (rule.bonus_points, rule.campaign_id) == (20, campaign.pk)


@pytest.mark.django_db
def test_duplicate_starts_an_inactive_copy(client, marketer):
    gold = Tier.objects.create(name="Gold", rank=2, threshold=1000)
    source = EarningRuleFactory(name="Coffee", categories=["coffee"], budget_points=10,
                                budget_spent=10)  # fmt: skip
    source.tiers.add(gold)
    page = client.get(reverse("rule-new"), {"copy": source.pk})
    form = page.context["form"]
    assert form["name"].value() == "Copy of Coffee" and form["active"].value() is False
    assert form["categories"].value() == ["coffee"] and list(form["tiers"].value()) == [gold.pk]
    assert not EarningRule.objects.exclude(pk=source.pk).exists()  # nothing saved yet


def test_a_rule_added_from_a_campaign_belongs_to_it(client, marketer):
    campaign = draft()
    page = client.get(reverse("rule-new"), {"campaign": campaign.pk})
    assert page.context["form"]["campaign"].value() == campaign.pk


@pytest.mark.django_db
def test_the_sku_box_suggests_skus_seen_in_recent_purchases(client, marketer):
    member = MemberFactory()
    for n, category in enumerate(["coffee", "cookies", "dairy"]):
        buy(member, n, at=days_ago(1), category=category)
    url = reverse("rule-suggest", args=["skus"])
    html = client.get(url, {"skus_other": "SKU-A1, sku-co"}).content.decode()
    assert re.findall(r'<option value="([^"]*)"></option>', html) == [
        "SKU-A1, SKU-coffee",
        "SKU-A1, SKU-cookies",
    ]
    assert client.get(url, {"skus_other": ""}).content.decode().strip() == ""
    assert client.get(reverse("rule-suggest", args=["name"])).status_code == 404


# -- the simulator -------------------------------------------------------------------------------


def shop_history():
    """Two members, five purchases over the last week: three of coffee, two of dairy."""
    anna, bram = MemberFactory(), MemberFactory()
    EarningRuleFactory(name="Base", rate=Decimal(1))
    buy(anna, 1, at=days_ago(6), category="coffee", amount="10.00")
    buy(anna, 2, at=days_ago(5), category="dairy", amount="20.00")
    buy(bram, 3, at=days_ago(5), category="coffee", amount="5.00")
    buy(bram, 4, at=days_ago(3), category="coffee", amount="5.00")
    buy(bram, 5, at=days_ago(2), category="dairy", amount="8.00")
    return anna, bram


def period(days: int = 7) -> dict:
    today = timezone.localdate()
    return {"start": (today - timedelta(days=days)).isoformat(), "end": today.isoformat()}


@pytest.mark.django_db
def test_the_simulator_runs_the_rule_as_edited_in_a_job_and_shows_the_figures(
    client, marketer, django_capture_on_commit_callbacks
):
    shop_history()
    rule = EarningRuleFactory(name="Coffee bonus", kind="bonus", bonus_points=10,
                              categories=["dairy"])  # fmt: skip
    # Unsaved: coffee instead of dairy, 25 points instead of 10.
    posted = rule_data(name="Coffee bonus", bonus_points="25", categories=["coffee"],
                       mode="edited", **period())  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("rule-simulate", args=[rule.pk]), posted)
    assert response.status_code == 200
    job = BackgroundJob.objects.get()
    assert (job.kind, job.requested_by, job.params["mode"]) == (
        "campaigns.rule_simulate", marketer, "edited"
    )  # fmt: skip
    job.refresh_from_db()
    assert job.status == "done", job.error
    assert (job.done, job.total) == (5, 5)
    result = job.result
    # Three coffee purchases of 25 points, by two members; dairy's 10 points are gone.
    assert (result["points"], result["members_reached"], result["cost"]) == (75, 2, "0.75")
    assert result["programme_points"] == 48 + 20  # base rate 48, dairy bonus 2 x 10
    assert result["programme_points_with"] == 48 + 75
    assert result["extra_points"] == 55
    assert sum(result["points_by_day"]) == 75 and len(result["days"]) == 8
    rule.refresh_from_db()
    assert (rule.bonus_points, rule.categories) == (10, ["dairy"])  # nothing was saved

    fragment = client.get(reverse("job", args=[job.pk]), HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert '<div class="value" data-figure="points">75</div>' in html
    assert '<div class="value" data-figure="members">2</div>' in html
    assert '<div class="value" data-figure="cost">0.75 EUR</div>' in html
    assert "+55 (0.55 EUR)" in html
    assert f'<canvas data-chart="rule-simulation-{job.pk}"' in html
    assert_no_unmarked_inline_code(html, None)


@pytest.mark.django_db
def test_the_simulator_runs_a_new_rule_and_a_saved_one(
    client, marketer, django_capture_on_commit_callbacks
):
    shop_history()
    new = rule_data(name="Dairy bonus", bonus_points="5", categories=["dairy"], mode="edited",
                    **period())  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("rule-new-simulate"), new)
    job = BackgroundJob.objects.get()
    assert job.status == "done" and job.result["points"] == 10
    assert not EarningRule.objects.filter(name="Dairy bonus").exists()

    rule = EarningRuleFactory(name="Dairy", kind="bonus", bonus_points=7, categories=["dairy"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("rule-simulate", args=[rule.pk]), {"mode": "saved", **period()})
    job = BackgroundJob.objects.latest("pk")
    assert job.status == "done" and job.result["points"] == 14
    assert job.result["extra_points"] == 0  # as saved: the programme already has it


@pytest.mark.django_db
def test_the_simulator_says_what_keeps_it_from_starting(client, marketer):
    rule = EarningRuleFactory()
    today = timezone.localdate()
    reversed_period = {"start": today.isoformat(), "end": (today - timedelta(1)).isoformat()}
    response = client.post(
        reverse("rule-simulate", args=[rule.pk]),
        rule_data(bonus_points="-1", mode="edited", **reversed_period),
    )
    html = response.content.decode()
    assert response.status_code == 200  # htmx swaps it into the panel
    assert "The end must be after the start." in html
    assert "Bonus points: Ensure this value is greater than or equal to 0." in html
    assert not BackgroundJob.objects.exists()


@pytest.mark.django_db
def test_the_editor_page_holds_the_simulator_panel(client, marketer):
    rule = EarningRuleFactory()
    page = client.get(reverse("rule-edit", args=[rule.pk]))
    html = page.content.decode()
    assert f'hx-post="/rules/{rule.pk}/simulate/"' in html and 'hx-include="#rule-form"' in html
    assert 'name="start"' in html and 'type="date"' in html
    assert "chart.umd.min.js" in html
    assert_no_unmarked_inline_code(html, None)


@pytest.mark.django_db
def test_the_editor_answers_in_a_bounded_number_of_queries(
    client, marketer, django_assert_max_num_queries
):
    gold = Tier.objects.create(name="Gold", rank=2, threshold=1000)
    rule = EarningRuleFactory(campaign=draft(rules=()))
    rule.tiers.add(gold)
    for n in range(20):
        Segment.objects.create(name=f"Segment {n}")
    with django_assert_max_num_queries(16):
        assert client.get(reverse("rule-edit", args=[rule.pk])).status_code == 200


# -- the simulator's progress and the selectors behind the pickers ------------------------------


@pytest.mark.django_db
def test_the_simulators_report_progress_per_chunk_of_purchases(monkeypatch):
    shop_history()
    monkeypatch.setattr(simulator, "PROGRESS_EVERY", 2)
    calls = []
    today = timezone.localdate()
    simulator.simulate(
        start=days_ago(7), end=timezone.now(), rules=list(selectors.rules_in_play()),
        progress=calls.append,
    )  # fmt: skip
    assert calls == [2, 2, 1]
    calls.clear()
    rule = rule_draft_saved(EarningRule.objects.get(name="Base"))
    simulator.rule_simulate(
        rule=rule, first=today - timedelta(7), last=today, progress=calls.append
    )
    assert calls == [2, 2, 1]


@pytest.mark.django_db
def test_the_pickers_values_come_from_an_index_and_the_newest_rows(monkeypatch):
    member = MemberFactory()
    buy(member, 1, at=days_ago(9), category="tea", store="old")
    for n, (category, store) in enumerate([("coffee", "ams"), ("dairy", "utr")], start=2):
        buy(member, n, at=days_ago(1), category=category, store=store)
    purchase_record(member=member, channel="webshop", external_id="W1", amount=Decimal(1),
                    currency="EUR", occurred_at=days_ago(1))  # fmt: skip
    assert ledger_selectors.purchase_channels_seen() == ["pos", "webshop"]
    assert ledger_selectors.purchase_channels_seen(limit=1) == ["pos"]
    # Only the newest rows: the oldest purchase's store and category are not read.
    newest = {"sample": 2}
    assert ledger_selectors.purchase_values_recent(field="store", **newest) == ["utr"]
    assert ledger_selectors.purchase_values_recent(field="category", sample=2) == [
        "coffee", "dairy"
    ]  # fmt: skip
    assert ledger_selectors.purchase_values_recent(field="category") == ["coffee", "dairy", "tea"]
    assert ledger_selectors.purchase_values_recent(field="sku", prefix="sku-c") == ["SKU-coffee"]
    values = selectors.rule_condition_values()
    assert values["channels"] == ["pos", "webshop"] and values["stores"] == ["ams", "old", "utr"]
