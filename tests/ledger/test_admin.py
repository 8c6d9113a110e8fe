import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from ledger import services
from ledger.models import AdjustmentRequest, Entry
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser():
    return UserFactory(is_staff=True, is_superuser=True)


def test_entries_and_accounts_are_read_only_even_for_superusers(client, superuser):
    member = MemberFactory()
    entry = services.points_earn(member=member, points=10, reference="till-7")
    client.force_login(superuser)
    for name in ("entry", "account", "lot", "hold"):
        assert client.get(reverse(f"admin:ledger_{name}_add")).status_code == 403
    assert client.post(reverse("admin:ledger_entry_delete", args=[entry.pk])).status_code == 403
    page = client.get(reverse("admin:ledger_entry_change", args=[entry.pk]))
    assert page.status_code == 200 and b'name="amount"' not in page.content
    assert Entry.objects.get().amount == 10


def test_entries_searchable_by_member_and_reference(
    client, superuser, django_assert_max_num_queries
):
    alice, bob = MemberFactory(last_name="Jansen"), MemberFactory(last_name="Bakker")
    for n in range(5):
        services.points_earn(member=alice, points=1 + n, reference=f"till-{n}")
    services.points_earn(member=bob, points=99, reference="web-1")
    client.force_login(superuser)
    url = reverse("admin:ledger_entry_changelist")
    with django_assert_max_num_queries(12):
        page = client.get(url, {"q": "Jansen"})
    assert page.context["cl"].result_list.count() == 5
    assert client.get(url, {"q": "web-1"}).context["cl"].result_list.get().amount == 99
    accounts = client.get(reverse("admin:ledger_account_changelist"), {"q": bob.email})
    assert list(accounts.context["cl"].result_list) == [bob.account]


def test_service_requests_finance_approves_self_approval_refused(client, staff_user, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    member = MemberFactory()
    clerk = staff_user("Customer service")
    finance = staff_user("Finance")
    client.force_login(clerk)
    response = client.post(
        reverse("admin:ledger_adjustmentrequest_add"),
        {"member": member.email, "points": 500, "reason": "missing purchase"},
    )
    assert response.status_code == 302, response.content
    request = AdjustmentRequest.objects.get()
    assert (request.points, request.requested_by, request.status) == (500, clerk, "pending")

    changelist = reverse("admin:ledger_adjustmentrequest_changelist")
    # Customer service has no approve action at all.
    page = client.get(changelist, {"status__exact": "pending"})
    assert page.status_code == 200
    assert list(page.context["cl"].result_list) == [request]
    assert page.context["action_form"] is None

    # Finance sees the queue; approving posts one entry.
    client.force_login(finance)
    client.post(changelist, {"action": "approve", "_selected_action": [request.pk]})
    request.refresh_from_db()
    assert request.status == "approved" and request.decided_by == finance
    assert Entry.objects.filter(kind="adjust", amount=500).count() == 1

    # A Finance user requesting and then approving their own request gets an error message.
    own = services.points_adjust(member=member, points=700, reason="x", actor=finance)
    response = client.post(changelist, {"action": "approve", "_selected_action": [own.pk]})
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("second staff member" in text for text in texts), texts
    own.refresh_from_db()
    assert own.status == "pending"


def test_small_adjustment_from_admin_posts_at_once(client, staff_user, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    member = MemberFactory()
    client.force_login(staff_user("Customer service"))
    response = client.post(
        reverse("admin:ledger_adjustmentrequest_add"),
        {"member": member.email, "points": 25, "reason": "goodwill"},
    )
    assert response.status_code == 302
    assert not AdjustmentRequest.objects.exists()
    assert Entry.objects.get().amount == 25
    # A debit larger than the balance is a form error, not a 500.
    response = client.post(
        reverse("admin:ledger_adjustmentrequest_add"),
        {"member": member.email, "points": -26, "reason": "oops"},
    )
    assert response.status_code == 200 and Entry.objects.count() == 1
    assert "not have enough points" in response.content.decode()


def test_queue_opens_on_pending(client, superuser):
    client.force_login(superuser)
    response = client.get(reverse("admin:ledger_adjustmentrequest_changelist"))
    assert response.status_code == 302 and "status__exact=pending" in response["Location"]


def test_ledger_permissions_by_role(staff_user):
    service, finance, marketing = (
        staff_user("Customer service"),
        staff_user("Finance"),
        staff_user("Marketing"),
    )
    assert service.has_perms(["ledger.view_entry", "ledger.add_adjustmentrequest"])
    assert not service.has_perm("ledger.approve_adjustmentrequest")
    assert finance.has_perms(["ledger.view_lot", "ledger.approve_adjustmentrequest"])
    assert not finance.has_perm("ledger.add_adjustmentrequest")
    assert not marketing.has_perm("ledger.view_entry")
    # Nobody holds change or delete on entries through a role but the Administrator, and the
    # admin refuses those to everyone anyway (see the read-only test above).
    assert not service.has_perm("ledger.change_entry")
    assert not finance.has_perm("ledger.delete_entry")


# --- changelists at scale: no count of the whole table, no DISTINCT, search by member first ---
BIG_CHANGELISTS = [
    (name, params)
    for name, filtered in (
        ("ledger_entry", {"channel": "till"}),
        ("ledger_purchase", {"channel": "till"}),
        ("members_member", {"status__exact": "active"}),
        ("ledger_lot", {"q": "a-1"}),
    )
    for params in ({}, {"q": "alice@example.nl"}, filtered)
]


def _whole_table_reads(queries) -> list[str]:
    """The statements that read a whole table to answer a page: an unbounded COUNT, or a
    DISTINCT (the default filter's choices)."""
    found = []
    for query in queries:
        sql = query["sql"].upper()
        if ("COUNT(" in sql and "LIMIT" not in sql) or "DISTINCT" in sql:
            found.append(query["sql"])
    return found


@pytest.fixture
def big_programme():
    from ledger.models import Purchase
    from loyalty_site.channels import channel_create
    from loyalty_site.models import SCOPES
    from tests.factories import CardFactory
    from tests.ledger.factories import PurchaseFactory

    channel_create(name="till", kind="pos", scopes=list(SCOPES))
    alice = MemberFactory(email="alice@example.nl", last_name="Jansen")
    bob = MemberFactory(email="bob@example.nl", last_name="Bakker")
    card = CardFactory(member=alice)
    for n in range(3):
        services.points_earn(member=alice, points=1 + n, channel="till", reference=f"a-{n}")
        services.points_earn(member=bob, points=10 + n, channel="web", reference=f"b-{n}")
    PurchaseFactory(member=alice, channel="till", external_id="R-1")
    PurchaseFactory(member=bob, channel="till", external_id="R-2")
    assert Purchase.objects.count() == 2
    return {"alice": alice, "bob": bob, "card": card}


@pytest.mark.parametrize(("name", "params"), BIG_CHANGELISTS)
def test_changelist_reads_no_whole_table(client, superuser, big_programme, name, params):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(superuser)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse(f"admin:{name}_changelist"), params)
    assert page.status_code == 200
    assert _whole_table_reads(captured.captured_queries) == []
    # Session, user, the page's rows, the bounded count, the search's member ids and
    # account ids, the channel filter's choices: the same handful at any size.
    assert len(captured.captured_queries) <= 10


def test_unfiltered_count_is_the_planner_estimate(client, superuser, big_programme, monkeypatch):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from members.admin_paginator import EstimatedCountPaginator

    if connection.vendor != "postgresql":
        pytest.skip("the estimate is PostgreSQL's (pg_class.reltuples); SQLite counts")
    monkeypatch.setattr(EstimatedCountPaginator, "counted_at_most", 2)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ledger_entry")
    client.force_login(superuser)
    url = reverse("admin:ledger_entry_changelist")
    with CaptureQueriesContext(connection) as captured:
        page = client.get(url)
    assert page.context["cl"].result_count == Entry.objects.count() == 6
    assert not [q for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
    # Filtered, the count stops at counted_at_most rows.
    assert client.get(url, {"kind__exact": "earn"}).context["cl"].result_count == 2


def test_entries_and_purchases_found_by_members_own_search(client, superuser, big_programme):
    card = big_programme["card"]
    client.force_login(superuser)
    entries = reverse("admin:ledger_entry_changelist")
    for term in ("alice@example.nl", "ALICE@example", card.number, "jans"):
        found = client.get(entries, {"q": term}).context["cl"].result_list
        assert sorted(e.amount for e in found) == [1, 2, 3], term
    assert [e.amount for e in client.get(entries, {"q": "b-2"}).context["cl"].result_list] == [12]
    assert list(client.get(entries, {"q": "nobody@example.nl"}).context["cl"].result_list) == []
    purchases = reverse("admin:ledger_purchase_changelist")
    found = client.get(purchases, {"q": "alice@example.nl"}).context["cl"].result_list
    assert [p.external_id for p in found] == ["R-1"]
    found = client.get(purchases, {"q": "R-2"}).context["cl"].result_list
    assert [p.member for p in found] == [big_programme["bob"]]
    # A search within a filter keeps the filter.
    found = client.get(entries, {"q": "jans", "channel": "web"}).context["cl"].result_list
    assert list(found) == []


def test_channel_filter_offers_the_channels_and_filters(client, superuser, big_programme):
    client.force_login(superuser)
    page = client.get(reverse("admin:ledger_entry_changelist"), {"channel": "till"})
    assert sorted(e.amount for e in page.context["cl"].result_list) == [1, 2, 3]
    choices = [
        c["display"]
        for f in page.context["cl"].filter_specs
        for c in f.choices(page.context["cl"])
        if f.title == "channel"
    ]
    assert "till" in choices


# --- a page of a big table comes from an index: its order and its rare filters ---
INDEXED_PAGES = [
    # (changelist, filter, the index its rows and bounded count come from)
    ("ledger_entry", {"reason_code": "birthday"}, "entry_reason_recent"),
    ("ledger_purchase", {"status__exact": "rejected"}, "purchase_status_rare"),
    ("members_member", {"status__exact": "blocked"}, "member_status_rare"),
    ("ledger_lot", {}, "ledger_lot_pkey"),
    ("ledger_entry", {}, "ledger_entry_created_at"),
]


@pytest.mark.parametrize(("name", "params", "index"), INDEXED_PAGES)
def test_big_changelist_page_comes_from_an_index(
    client, superuser, big_programme, name, params, index
):
    """On a few rows any plan is fast, so the planner is told that scanning or sorting a whole
    table is dear (as it is on millions of rows); then every statement that reads the table
    must name the index, and none may sort all its rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if connection.vendor != "postgresql":
        pytest.skip("the plans are PostgreSQL's")
    client.force_login(superuser)
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse(f"admin:{name}_changelist"), params)
    assert page.status_code == 200
    reads = [q["sql"] for q in captured.captured_queries if f'FROM "{name}"' in q["sql"]]
    assert reads, "no statement read the table"
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        for sql in reads:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert index in plan, plan
            # A Sort over the index's rows (not an Incremental Sort of ties) sorts every row.
            assert not [
                line
                for line in plan.splitlines()
                if line.strip().startswith("->  Sort") or line.startswith("Sort")
            ], plan


def test_big_ledger_lists_sort_only_by_an_indexed_column(client, superuser, big_programme):
    import re

    client.force_login(superuser)
    for name, sortable in (
        ("ledger_entry", ["created_at"]),
        ("ledger_purchase", ["occurred_at"]),
        ("ledger_lot", []),
    ):
        html = client.get(reverse(f"admin:{name}_changelist")).content.decode()
        assert re.findall(r'class="sortable column-(\w+)', html) == sortable, name
