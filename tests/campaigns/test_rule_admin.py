"""The admin's earning-rule pages save and delete through the rule service, as /rules/ does
(campaigns.services.rules): a rule of a campaign past its draft is read-only there, an edit is
audited and reaches the earn path's cached rules at once (issue 14)."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from campaigns import selectors
from campaigns.models import EarningAward, EarningRule
from campaigns.services import rule_delete
from loyalty_site.errors import DomainError
from members.models import AuditEntry
from tests.campaigns.campaigning import buy, draft, running
from tests.campaigns.factories import EarningRuleFactory
from tests.campaigns.test_admin import rule_post
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def change_url(rule) -> str:
    return reverse("admin:campaigns_earningrule_change", args=[rule.pk])


def delete_url(rule) -> str:
    return reverse("admin:campaigns_earningrule_delete", args=[rule.pk])


@pytest.fixture
def marketing(client, staff_user):
    client.force_login(staff_user("Marketing"))
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_a_rule_of_a_running_campaign_is_read_only_with_a_message(marketing):
    campaign = running()
    rule = campaign.rules.get()

    page = marketing.get(change_url(rule))

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html
    assert "no longer a draft: its rules cannot be changed" in html
    assert "Double week" in html


def test_a_forged_change_or_delete_of_such_a_rule_is_refused_and_changes_nothing(marketing):
    campaign = running()
    rule = campaign.rules.get()

    changed = marketing.post(change_url(rule), rule_post(name="Hacked", bonus_points="999"))
    deleted = marketing.post(delete_url(rule), {"post": "yes"})

    assert (changed.status_code, deleted.status_code) == (403, 403)
    rule.refresh_from_db()
    assert (rule.name, rule.bonus_points) == ("Campaign bonus", 10)
    assert not AuditEntry.objects.filter(action__startswith="earning_rule").exists()


def test_a_rule_of_a_draft_campaign_and_a_programme_rule_stay_editable(marketing):
    drafted = draft().rules.get()
    programme = EarningRuleFactory()

    for rule in (drafted, programme):
        assert 'name="_save"' in marketing.get(change_url(rule)).content.decode()


def test_an_admin_edit_goes_through_the_service_audited_and_clears_the_cached_rules(
    marketing, settings, django_capture_on_commit_callbacks
):
    settings.LOYALTY_CONFIG_CACHE_SECONDS = 300
    rule = EarningRuleFactory(name="Weekend", kind="bonus", rate=0, bonus_points=50)
    now = timezone.now()
    assert [r.bonus_points for r in selectors.rules_active_cached(now)] == [50]

    with django_capture_on_commit_callbacks(execute=True):
        response = marketing.post(
            change_url(rule), rule_post(bonus_points="75", change_reason="autumn push")
        )

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert [r.bonus_points for r in selectors.rules_active_cached(now)] == [75]
    audit = AuditEntry.objects.get(action="earning_rule_change")
    assert audit.reason == "autumn push"
    assert audit.details == {"rule_id": rule.pk, "fields": ["bonus_points"]}


def test_an_admin_addition_is_audited_with_its_tiers(marketing):
    from tests.members.factories import ladder

    _bronze, silver, gold = ladder()

    response = marketing.post(
        reverse("admin:campaigns_earningrule_add"),
        rule_post(tiers=[str(silver.pk), str(gold.pk)]),
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    rule = EarningRule.objects.get(name="Weekend")
    assert set(rule.tiers.all()) == {silver, gold}
    assert AuditEntry.objects.get(action="earning_rule_create").details["rule_id"] == rule.pk


def test_moving_a_rule_into_a_running_campaign_is_refused_on_the_form(marketing):
    campaign = running()
    rule = EarningRuleFactory(name="Weekend", kind="bonus", bonus_points=50)

    response = marketing.post(change_url(rule), rule_post(campaign=str(campaign.pk)))

    assert response.status_code == 200
    errors = response.context["adminform"].form.non_field_errors()
    assert errors == ["The rules of a campaign that is no longer a draft cannot be changed."]
    rule.refresh_from_db()
    assert rule.campaign_id is None


def test_a_budget_below_the_spent_points_is_refused_on_its_field(marketing):
    rule = EarningRuleFactory(name="Weekend", kind="bonus", bonus_points=50, budget_points=500)
    EarningRule.objects.filter(pk=rule.pk).update(budget_spent=300)

    response = marketing.post(change_url(rule), rule_post(budget_points="100"))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["budget_points"] == [
        "The budget cannot be less than the 300 points already spent."
    ]


def test_a_delete_goes_through_the_service_and_is_audited(
    marketing, settings, django_capture_on_commit_callbacks
):
    settings.LOYALTY_CONFIG_CACHE_SECONDS = 300
    rule = EarningRuleFactory(name="Old rule")
    assert selectors.rules_active_cached(timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        response = marketing.post(delete_url(rule), {"post": "yes"})

    assert response.status_code == 302
    assert not EarningRule.objects.filter(pk=rule.pk).exists()
    assert selectors.rules_active_cached(timezone.now()) == []
    assert AuditEntry.objects.get(action="earning_rule_delete").details["name"] == "Old rule"


def test_delete_selected_deletes_each_rule_through_the_service(marketing):
    gone = [EarningRuleFactory(name="Gone"), EarningRuleFactory(name="Also gone")]
    kept = EarningRuleFactory(name="Kept")

    response = marketing.post(
        reverse("admin:campaigns_earningrule_changelist"),
        {"action": "delete_selected", "_selected_action": [r.pk for r in gone], "post": "yes"},
    )

    assert response.status_code == 302
    assert list(EarningRule.objects.all()) == [kept]
    assert messages_of(response) == ["Successfully deleted 2 earning rules."]
    deleted = AuditEntry.objects.filter(action="earning_rule_delete")
    assert sorted(entry.details["name"] for entry in deleted) == ["Also gone", "Gone"]


def test_delete_selected_with_a_rule_of_a_running_campaign_deletes_nothing(marketing):
    kept = running().rules.get()
    other = EarningRuleFactory(name="Other")

    response = marketing.post(
        reverse("admin:campaigns_earningrule_changelist"),
        {"action": "delete_selected", "_selected_action": [kept.pk, other.pk], "post": "yes"},
    )

    assert response.status_code == 403
    assert EarningRule.objects.count() == 2


def test_the_service_refuses_to_delete_a_rule_that_gave_points():
    rule = EarningRuleFactory(name="Base")
    buy(MemberFactory(), amount="10.00", at=timezone.now() - timedelta(minutes=1))
    assert EarningAward.objects.filter(rule=rule).exists()

    with pytest.raises(DomainError) as refused:
        rule_delete(rule=rule, actor=None)

    assert refused.value.code == "rule_in_use"
    assert EarningRule.objects.filter(pk=rule.pk).exists()


def test_customer_service_may_not_change_rules_in_the_admin(client, staff_user):
    client.force_login(staff_user("Customer service"))
    rule = EarningRuleFactory()

    assert client.get(change_url(rule)).status_code == 403
    assert client.post(delete_url(rule), {"post": "yes"}).status_code == 403


def test_the_change_page_reads_in_a_bounded_number_of_queries(
    marketing, django_assert_max_num_queries
):
    rule = running().rules.get()

    with django_assert_max_num_queries(25):
        assert marketing.get(change_url(rule)).status_code == 200
