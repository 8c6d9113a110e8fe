import json

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext

from members.models import AuditEntry, Card
from members.services import card_block, member_enrol

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/members/member/"


@pytest.fixture
def others():
    return [
        member_enrol(email=f"other{i}@example.nl", first_name="Bram", last_name=f"Bakker{i}")
        for i in range(3)
    ]


def _found(client, term):
    response = client.get(CHANGELIST, {"q": term})
    assert response.status_code == 200
    return [m.pk for m in response.context["cl"].result_list]


@pytest.mark.parametrize(
    "term",
    [
        "anna.devries@example.nl",
        "ANNA.DEVRIES@",
        "06 12345678",
        "+31612345678",
        "LEG-42",
        "de vries",
        "Anna",
        "anna de",
    ],
)
def test_one_box_finds_a_member_by_email_phone_external_id_and_name(
    client, service, anna, others, term
):
    assert _found(client, term) == [anna.pk]


def test_search_by_card_number_and_not_by_a_replaced_lookup_elsewhere(
    client, service, anna, others
):
    number = anna.cards.get().number
    assert _found(client, number) == [anna.pk]
    assert _found(client, " ".join(number[i : i + 4] for i in range(0, 16, 4))) == [anna.pk]


def test_big_lists_skip_the_full_count(client, service, anna, others):
    with CaptureQueriesContext(connection) as queries:
        client.get(CHANGELIST, {"q": "Bakker"})
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    # One count of the filtered result; never a second COUNT over the whole table.
    assert len(counts) <= 1


def test_search_uses_an_index_on_postgresql(anna):
    if connection.vendor != "postgresql":
        pytest.skip("plans are PostgreSQL's")
    from members.selectors import member_search

    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        number = anna.cards.get().number
        spaced = " ".join(number[i : i + 4] for i in range(0, 16, 4))
        # A card number is resolved to the member's id first: `id IN (card subquery)` ORed
        # with the external id could only be answered by reading every member.
        for term in ("de vr", "anna.devries@example.nl", "LEG-42", number, spaced):
            sql, params = member_search(term=term).query.sql_with_params()
            cursor.execute("EXPLAIN " + sql, params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on members_member" not in plan, plan


def test_a_card_search_looks_the_card_up_once_and_the_member_by_id(anna, others):
    from members.selectors import member_search

    number = anna.cards.get().number
    for term in (number, " ".join(number[i : i + 4] for i in range(0, 16, 4))):
        with CaptureQueriesContext(connection) as queries:
            found = list(member_search(term=term))
        assert found == [anna]
        cards, members = queries.captured_queries
        assert '"members_card"' in cards["sql"] and '"members_card"' not in members["sql"]
        assert f'"members_member"."id" = {anna.pk}' in members["sql"]


def test_an_unknown_card_number_finds_no_one(anna):
    from members.cardnumbers import is_valid
    from members.selectors import member_search

    number = anna.cards.get().number
    other = next(
        n
        for n in (f"{int(number[:-1]) + i:015d}{d}" for i in range(1, 50) for d in "0123456789")
        if is_valid(n) and n != number
    )
    assert list(member_search(term=other)) == []


def test_staff_edit_goes_through_the_service_and_is_audited(client, service, anna):
    url = f"/admin/members/member/{anna.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {
            "email": " ANNA.NEW@example.nl",
            "profile": json.dumps(anna.profile),
            "cards-TOTAL_FORMS": "1",
            "cards-INITIAL_FORMS": "1",
            "cards-0-id": anna.cards.get().pk,
            "cards-0-member": anna.pk,
            "consents-TOTAL_FORMS": "0",
            "consents-INITIAL_FORMS": "0",
            "tier_history-TOTAL_FORMS": "0",
            "tier_history-INITIAL_FORMS": "0",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    anna.refresh_from_db()
    assert anna.email == "anna.new@example.nl"
    audit = AuditEntry.objects.get(action="member_update")
    assert audit.actor == service and audit.details == {"fields": ["email"]}


def test_card_actions_block_and_replace(client, service, anna):
    card = anna.cards.get()
    client.post(
        "/admin/members/card/", {"action": "replace_selected", "_selected_action": [card.pk]}
    )
    card.refresh_from_db()
    assert card.status == Card.Status.REPLACED
    new = anna.cards.get(status="active")
    client.post("/admin/members/card/", {"action": "block_selected", "_selected_action": [new.pk]})
    new.refresh_from_db()
    assert new.status == Card.Status.BLOCKED
    assert AuditEntry.objects.filter(action__in=["card_replace", "card_block"]).count() == 2


def test_card_action_reports_a_refused_card_and_blocks_the_others(client, service, anna, others):
    blocked = card_block(card=anna.cards.get())
    active = others[0].cards.get()
    response = client.post(
        "/admin/members/card/",
        {"action": "block_selected", "_selected_action": [blocked.pk, active.pk]},
    )
    assert response.status_code == 302
    texts = sorted(str(m) for m in get_messages(response.wsgi_request))
    assert texts == [
        "1 card blocked.",
        f"{blocked.number}: Only an active card can be blocked or replaced.",
    ]
    active.refresh_from_db()
    assert active.status == Card.Status.BLOCKED
    assert AuditEntry.objects.get(action="card_block", actor=service).member == others[0]


def test_an_erased_member_cannot_be_edited_a_form_error_not_a_500(client, service, anna):
    from loyalty_site.privacy import member_erase

    member_erase(member=anna, actor=service, reason="request")
    url = f"/admin/members/member/{anna.pk}/change/"
    page = client.get(url)
    form = page.context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {
            "first_name": "Back",
            "profile": "{}",
            "cards-TOTAL_FORMS": "1",
            "cards-INITIAL_FORMS": "1",
            "cards-0-id": anna.cards.get().pk,
            "cards-0-member": anna.pk,
            "consents-TOTAL_FORMS": "0",
            "consents-INITIAL_FORMS": "0",
            "tier_history-TOTAL_FORMS": "0",
            "tier_history-INITIAL_FORMS": "0",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 200
    assert "erased" in str(response.context["adminform"].form.non_field_errors())
    anna.refresh_from_db()
    assert anna.first_name == ""


@pytest.mark.parametrize("years", [121, -1])
def test_a_birth_date_outside_a_lifetime_is_a_form_error_and_nothing_changes(
    client, service, anna, years
):
    from django.utils import timezone

    today = timezone.localdate()
    bad = today.replace(year=today.year - years, day=1)
    url = f"/admin/members/member/{anna.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None}
    data.update(
        {
            "birth_date": bad.isoformat(),
            "profile": json.dumps(anna.profile),
            "cards-TOTAL_FORMS": "0",
            "cards-INITIAL_FORMS": "0",
            "consents-TOTAL_FORMS": "0",
            "consents-INITIAL_FORMS": "0",
            "tier_history-TOTAL_FORMS": "0",
            "tier_history-INITIAL_FORMS": "0",
        }
    )
    response = client.post(url, data)
    assert response.status_code == 200
    earliest = today.replace(year=today.year - 120).isoformat()
    assert response.context["adminform"].form.errors["birth_date"] == [
        f"Enter a birth date between {earliest} and today."
    ]
    anna.refresh_from_db()
    assert anna.birth_date is None
    assert not AuditEntry.objects.filter(action="member_update").exists()


def test_the_member_list_shows_fifty_a_page(client, service):
    from tests.factories import MemberFactory

    MemberFactory.create_batch(51)
    page = client.get(CHANGELIST)
    assert len(page.context["cl"].result_list) == 50
    assert page.context["cl"].multi_page
