"""The audit log page (/audit/): both logs merged, filters, keyset pages, CSV, erasure, roles."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.urls import reverse

from campaigns.models import Campaign, EarningRule, Segment
from loyalty_site import audit_log
from loyalty_site.models import Channel, WebhookSubscription
from loyalty_site.privacy import member_erase
from members.models import AuditEntry, Card, Consent, Member, Tier
from members.services import audit_record, card_block, card_issue, consent_grant, member_update
from rewards.models import Reward, RewardTierPrice
from tests.factories import MemberFactory
from tests.members.factories import TierFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

URL = "/audit/"


@pytest.fixture
def admin_user(staff_user):
    return staff_user("Administrator")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def test_the_url_name():
    assert reverse("audit") == URL


@pytest.mark.parametrize(
    ("role", "status"),
    [("Administrator", 200), ("Finance", 200), ("Marketing", 403), ("Customer service", 403)],
)
def test_who_may_read_the_log(client, staff_user, role, status):
    client.force_login(staff_user(role))
    assert client.get(URL).status_code == status
    assert client.get(reverse("audit-export")).status_code == status


def test_signed_out_goes_to_the_login(client):
    assert client.get(URL)["Location"].startswith("/login/")


def test_a_tier_edited_in_the_admin_shows_before_after_and_who(admin_client, admin_user):
    tier = TierFactory(name="Silver", threshold=100)
    change_url = reverse("admin:members_tier_change", args=[tier.pk])
    form = admin_client.get(change_url).context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data.update(threshold=250, _save="Save")
    response = admin_client.post(change_url, {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 302, response.context["adminform"].form.errors

    entry = LogEntry.objects.get(content_type__model="tier", action=LogEntry.Action.UPDATE)
    assert entry.actor == admin_user
    html = admin_client.get(URL).content.decode()
    assert "Changed: tier" in html
    assert "<del>100</del> → 250" in html
    assert admin_user.username in html


def test_a_reason_given_in_the_admin_is_kept_with_the_change(admin_client, admin_user):
    tier = TierFactory(name="Gold", threshold=500)
    change_url = reverse("admin:members_tier_change", args=[tier.pk])
    page = admin_client.get(change_url)
    assert b'name="change_reason"' in page.content
    form = page.context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields if name != "change_reason"}
    data.update(threshold=750, change_reason="Board decision of 3 March", _save="Save")
    response = admin_client.post(change_url, {k: v for k, v in data.items() if v is not None})
    assert response.status_code == 302, response.context["adminform"].form.errors
    entry = LogEntry.objects.get(content_type__model="tier", action=LogEntry.Action.UPDATE)
    assert entry.additional_data == {"reason": "Board decision of 3 March"}
    assert entry.actor == admin_user
    rows = admin_client.get(URL, {"kind": "config:members.tier"}).context["rows"]
    assert rows[0].reason == "Board decision of 3 March"
    # A later save elsewhere in the same thread carries no stale reason.
    tier.refresh_from_db()
    tier.benefits = "More"
    tier.save()
    assert LogEntry.objects.order_by("-pk").first().additional_data is None


def test_a_read_only_admin_form_asks_no_reason(client, staff_user):
    client.force_login(staff_user("Customer service"))  # may view tiers, not change them
    tier = TierFactory()
    page = client.get(reverse("admin:members_tier_change", args=[tier.pk]))
    assert page.status_code == 200
    assert b"change_reason" not in page.content


def test_member_actions_appear_with_their_reason_and_member_link(admin_client, staff_user):
    agent = staff_user("Customer service")
    member = MemberFactory()
    card = card_issue(member=member)
    card_block(card=card, actor=agent, reason="Lost on the train")
    html = admin_client.get(URL).content.decode()
    assert "Card blocked" in html
    assert "Lost on the train" in html
    assert agent.username in html
    assert f"#{member.pk}" in html
    assert f"/admin/members/member/{member.pk}/change/" in html or f"/members/{member.pk}/" in html


def test_filters_by_member_kind_user_and_dates(admin_client, staff_user):
    agent, other = staff_user("Customer service"), staff_user("Customer service")
    anna, bert = MemberFactory(), MemberFactory(external_id="C-42")
    with time_machine.travel(datetime(2026, 3, 1, 12, tzinfo=UTC), tick=False):
        audit_record(actor=agent, action="member_update", member=anna, reason="march")
    with time_machine.travel(datetime(2026, 4, 1, 12, tzinfo=UTC), tick=False):
        audit_record(actor=other, action="card_block", member=bert, reason="april")
        TierFactory(name="Gold")

    def reasons(**query):
        response = admin_client.get(URL, query)
        assert response.status_code == 200
        return {row.reason for row in response.context["rows"]}, response.context["rows"]

    assert reasons(member=str(anna.pk))[0] == {"march"}
    assert reasons(member="C-42")[0] == {"april"}
    assert reasons(member=str(bert.public_id))[0] == {"april"}
    assert reasons(actor=agent.pk)[0] == {"march"}
    assert reasons(kind="member:card_block")[0] == {"april"}
    _r, rows = reasons(kind="config:members.tier")
    assert [row.subject for row in rows] == ["Gold"]
    assert reasons(date_from="2026-03-01", date_to="2026-03-31")[0] == {"march"}
    # A configuration change concerns no member: the member filter leaves it out.
    _r, rows = reasons(member=str(anna.pk))
    assert all(row.source == audit_log.MEMBER for row in rows)


def test_a_card_number_finds_its_member(admin_client, staff_user):
    member = MemberFactory()
    card = card_issue(member=member)
    audit_record(actor=staff_user("Customer service"), action="member_update", member=member)
    rows = admin_client.get(URL, {"member": card.number}).context["rows"]
    assert {row.member_id for row in rows} == {member.pk}


def test_bad_filters_are_form_errors(admin_client):
    response = admin_client.get(URL, {"member": "nobody-at-all", "kind": "nonsense"})
    assert response.status_code == 200
    form = response.context["form"]
    assert "member" in form.errors and "kind" in form.errors
    assert response.context["rows"] == []
    response = admin_client.get(URL, {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert "date_to" in response.context["form"].errors
    # A cursor that is not one of ours starts at the newest row instead of failing.
    assert admin_client.get(URL, {"before": "garbage"}).status_code == 200


def _rows(n, actor, member):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(actor=actor, action="member_update", member=member, at=start + timedelta(i))
            for i in range(n)
        ]
    )
    for i in range(n):
        with time_machine.travel(start + timedelta(i, hours=1), tick=False):
            TierFactory(name=f"Tier {i:03d}")


def test_pages_walk_both_logs_in_time_order_without_gaps(admin_client, staff_user):
    _rows(30, staff_user("Customer service"), MemberFactory())
    seen, query = [], {}
    while True:
        response = admin_client.get(URL, query)
        rows = response.context["rows"]
        seen += [row.key for row in rows]
        if not response.context["older"]:
            break
        query = {"before": response.context["older"]}
    expected = AuditEntry.objects.count() + LogEntry.objects.count()
    assert len(seen) == expected == len(set(seen))
    assert seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("n", [3, 40])
def test_the_page_answers_in_a_bounded_number_of_queries(
    admin_client, staff_user, django_assert_max_num_queries, n
):
    _rows(n, staff_user("Customer service"), MemberFactory())
    with django_assert_max_num_queries(12):
        response = admin_client.get(URL)
    assert len(response.context["rows"]) == min(audit_log.PAGE_SIZE, 2 * n)


def test_the_page_has_no_inline_code(admin_client, staff_user):
    audit_record(actor=staff_user("Customer service"), action="card_block", member=MemberFactory())
    TierFactory()
    assert_no_unmarked_inline_code(admin_client.get(URL).content.decode(), None)


def test_the_csv_export_streams_the_filtered_log_escaped_and_is_audited(admin_client, admin_user):
    member = MemberFactory()
    audit_record(actor=admin_user, action="card_block", member=member, reason="=HYPERLINK(1)")
    audit_record(actor=admin_user, action="member_update", member=MemberFactory(), reason="other")
    response = admin_client.get(reverse("audit-export"), {"member": str(member.pk)})
    assert response.streaming
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0][:3] == ["when", "staff user", "what"]
    assert len(rows) == 2
    assert rows[1][2] == "Card blocked"
    assert rows[1][6] == "'=HYPERLINK(1)"
    exported = AuditEntry.objects.get(action="audit_export")
    assert exported.actor == admin_user
    assert exported.details["filters"]["member_id"] == member.pk


def test_only_configuration_models_are_logged_never_personal_data():
    logged = set(auditlog.get_models())
    assert {Tier, Reward, RewardTierPrice, EarningRule, Segment, Campaign, Channel} <= logged
    assert WebhookSubscription in logged
    assert not logged & {Member, Card, Consent, AuditEntry}
    assert "secret" in auditlog.get_model_fields(WebhookSubscription)["exclude_fields"]


def test_a_webhook_secret_is_never_logged(admin_user):
    channel = Channel.objects.create(name="shop")
    subscription = WebhookSubscription.objects.create(
        channel=channel, url="https://example.com/hook", secret="s3cr3t-value"
    )
    subscription.secret = "n3w-s3cr3t"
    subscription.save()
    for entry in LogEntry.objects.all():
        assert "s3cr3t" not in str(entry.changes) + entry.object_repr + str(entry.changes_text)


def test_after_an_erasure_neither_log_holds_the_members_personal_values(staff_user):
    agent = staff_user("Customer service")
    member = MemberFactory(
        first_name="Wilhelmina",
        last_name="Zonnebloem",
        email="wilhelmina.z@example.nl",
        phone="+31612345678",
        external_id="EXT-778899",
    )
    card_block(card=card_issue(member=member), actor=agent, reason="stolen")
    consent_grant(member=member, purpose=Consent.Purpose.values[0], actor=agent)
    member_update(member=member, actor=agent, reason="moved", last_name="Zonnebloem-de Vries")
    member_erase(member=member, actor=agent, reason="asked to be forgotten")
    texts = [
        f"{e.action} {e.reason} {e.details}" for e in AuditEntry.objects.filter(member=member)
    ] + [f"{e.object_repr} {e.changes} {e.additional_data}" for e in LogEntry.objects.all()]
    assert texts
    for value in ("Wilhelmina", "Zonnebloem", "wilhelmina.z@", "612345678", "EXT-778899"):
        assert not any(value in text for text in texts), value
