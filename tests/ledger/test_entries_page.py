"""/ledger/: the points ledger page, searched and filtered, keyset-paged (issue 14)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ledger import selectors, services, views
from ledger.models import Entry
from loyalty_site.models import Channel
from members.services import card_issue
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

URL = reverse("ledger-entries")


@pytest.fixture
def agent(client, staff_user):
    user = staff_user("Customer service")
    client.force_login(user)
    return user


@pytest.fixture
def story():
    Channel.objects.create(name="pos-amsterdam")
    Channel.objects.create(name="webshop")
    anna = MemberFactory(first_name="Anna", last_name="de Vries", email="anna@example.nl")
    bob = MemberFactory(first_name="Bob", last_name="Jansen", email="bob@example.nl")
    now = timezone.now()
    earn = services.points_earn
    entries = {
        "anna-1": earn(
            member=anna,
            points=100,
            channel="pos-amsterdam",
            reference="R-1",
            at=now - timedelta(days=10),
        ),
        "bob-1": earn(
            member=bob, points=40, channel="webshop", reference="R-2", at=now - timedelta(days=5)
        ),
        "anna-2": earn(
            member=anna, points=25, channel="webshop", reference="R-3", at=now - timedelta(days=1)
        ),
    }
    entries["anna-redeem"] = services.points_redeem(member=anna, points=30, reference="R-4")
    return anna, bob, entries


def shown(response) -> list[int]:
    return [entry.pk for entry in response.context["entries"]]


def test_without_a_search_the_newest_entries_come_first(client, agent, story):
    _anna, _bob, entries = story

    response = client.get(URL)

    assert response.status_code == 200
    assert shown(response) == [
        entries[name].pk for name in ("anna-redeem", "anna-2", "bob-1", "anna-1")
    ]


@pytest.mark.parametrize("term", ["anna@example.nl", "de vries", "ID", "PUBLIC", "CARD"])
def test_a_member_is_found_by_id_card_email_or_name(client, agent, story, term):
    anna, _bob, entries = story
    card = card_issue(member=anna)
    term = {"ID": str(anna.pk), "PUBLIC": str(anna.public_id), "CARD": card.number}.get(term, term)

    response = client.get(URL, {"member": term})

    assert response.status_code == 200
    assert shown(response) == [entries[n].pk for n in ("anna-redeem", "anna-2", "anna-1")]
    html = response.content.decode()
    assert reverse("member-page", args=[anna.pk]) in html


def test_no_member_found_says_so_and_lists_nothing(client, agent, story):
    response = client.get(URL, {"member": "nobody@example.nl"})

    assert response.status_code == 200
    assert shown(response) == []
    assert "No member matches this search." in response.content.decode()


def test_a_reference_matches_exactly(client, agent, story):
    _anna, _bob, entries = story

    assert shown(client.get(URL, {"reference": "R-2"})) == [entries["bob-1"].pk]
    assert shown(client.get(URL, {"reference": "R-"})) == []


def test_kind_channel_and_dates_filter(client, agent, story):
    _anna, _bob, entries = story
    today = timezone.localdate()

    assert shown(client.get(URL, {"kind": "redeem"})) == [entries["anna-redeem"].pk]
    assert shown(client.get(URL, {"channel": "webshop"})) == [
        entries["anna-2"].pk,
        entries["bob-1"].pk,
    ]
    days = {"start": today - timedelta(days=6), "end": today - timedelta(days=1)}
    assert shown(client.get(URL, days)) == [entries["anna-2"].pk, entries["bob-1"].pk]


def test_the_channel_choices_come_from_the_channels_table(client, agent, story):
    # Entries of a channel that is not in the table do not add a choice.
    services.points_earn(member=story[0], points=1, channel="not-a-channel")

    response = client.get(URL)

    choices = [value for value, _label in response.context["form"].fields["channel"].choices]
    assert choices == ["", "pos-amsterdam", "webshop"]


@pytest.mark.parametrize(
    "query",
    [
        {"end": "2026-01-01", "start": "2026-02-01"},
        {"start": "not a date"},
        {"kind": "gift"},
        {"channel": "not-a-channel"},
        {"before": "yesterday"},
        {"before": "99999999999999999999999999.1"},
    ],
)
def test_bad_input_is_a_form_error_not_a_500(client, agent, story, query):
    response = client.get(URL, query)

    assert response.status_code == 400
    assert response.context["form"].errors
    assert shown(response) == []


def test_the_calendars_edges_filter_as_its_first_and_last_days(client, agent, story):
    every = shown(client.get(URL))

    assert shown(client.get(URL, {"start": "0001-01-01", "end": "9999-12-31"})) == every
    assert shown(client.get(URL, {"end": "0001-01-01"})) == []


def test_older_entries_page_by_keyset_without_counting(
    client, agent, story, monkeypatch, django_assert_max_num_queries
):
    _anna, _bob, entries = story
    monkeypatch.setattr(views, "ENTRIES_PER_PAGE", 3)
    # Same moment, two entries: the id breaks the tie, nothing is shown twice or skipped.
    tied = Entry.objects.get(pk=entries["bob-1"].pk).created_at
    twin = services.points_earn(member=story[1], points=7, at=tied)

    first = client.get(URL)
    assert first.context["older"]
    older = client.get(URL, {"before": first.context["older"]})

    assert shown(first) + shown(older) == [
        entries["anna-redeem"].pk,
        entries["anna-2"].pk,
        twin.pk,
        entries["bob-1"].pk,
        entries["anna-1"].pk,
    ]
    assert older.context["older"] is None
    assert "Newest entries" in older.content.decode()
    with django_assert_max_num_queries(8) as captured:
        client.get(URL, {"member": "anna@example.nl", "before": first.context["older"]})
    assert not any("COUNT(" in query["sql"].upper() for query in captured.captured_queries)


def test_the_page_keeps_its_filters_on_the_older_link(client, agent, story, monkeypatch):
    monkeypatch.setattr(views, "ENTRIES_PER_PAGE", 1)

    response = client.get(URL, {"channel": "webshop"})

    link = f"?channel=webshop&amp;before={response.context['older']}"
    assert link in response.content.decode()


def test_cursor_round_trips_the_moment_to_the_microsecond():
    entry = Entry(pk=12, created_at=datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC))
    form = views.EntrySearchForm({"before": views.entries_cursor(entry)}, channels=[])

    assert form.is_valid()
    assert form.cleaned_data["before"] == (entry.created_at, 12)


@pytest.mark.parametrize("role", ["Customer service", "Finance", "Administrator"])
def test_roles_with_the_entry_permission_see_the_page(
    client, staff_user, story, role, django_assert_max_num_queries
):
    client.force_login(staff_user(role))

    # A name is looked up in two steps (members.selectors: each part's ids by its index, then
    # the entries): a fixed number of queries, whatever the ledger holds.
    with django_assert_max_num_queries(10):
        response = client.get(URL, {"member": "anna"})

    assert response.status_code == 200
    assert len(shown(response)) == 3


def test_finance_sees_members_without_a_link_to_the_member_page_it_may_not_open(
    client, staff_user, story
):
    anna = story[0]
    client.force_login(staff_user("Finance"))

    html = client.get(URL).content.decode()

    assert str(anna) in html
    assert reverse("member-page", args=[anna.pk]) not in html


def test_marketing_is_refused(client, staff_user, story):
    client.force_login(staff_user("Marketing"))

    assert client.get(URL).status_code == 403


def test_the_sidebar_entry_opens_the_page(client, agent):
    html = client.get(reverse("home")).content.decode()

    assert f'href="{URL}"' in html
    assert reverse("admin:ledger_entry_changelist") not in html


def test_the_selector_pages_one_member_newest_first(story):
    anna, _bob, entries = story
    names = ("anna-redeem", "anna-2", "anna-1")

    page = selectors.entries_search(member_ids=[anna.pk], limit=2)
    rest = selectors.entries_search(
        member_ids=[anna.pk], before=(page[-1].created_at, page[-1].pk), limit=2
    )

    assert [e.pk for e in page + rest] == [entries[n].pk for n in names]
