"""Marketing's segment pages: the list, the builder's form posts, the live preview, saving (with
its audit entry), snapshots and presets; who may use them; CSP; query bounds."""

import re

import pytest
from django.http import QueryDict
from django.urls import reverse

from campaigns.campaign_forms import ROOT, builder_tree, definition_from_post
from campaigns.models import Campaign, Segment, SegmentSnapshot
from campaigns.segments import CONDITIONS
from campaigns.segments import fields as segment_fields
from campaigns.services import segment_save, segment_snapshot_take
from members.models import AuditEntry, Consent, Tier
from members.services import consent_grant
from tests.campaigns.factories import EarningRuleFactory
from tests.factories import MemberFactory
from tests.test_csp import assert_no_unmarked_inline_code

pytestmark = pytest.mark.django_db

ALLOWED = ["Marketing", "Administrator"]
REFUSED = ["Customer service", "Finance"]

README_EXAMPLE = {
    "all": [
        {"condition": "tier", "in": ["Gold"]},
        {"condition": "profile", "key": "city", "equals": "Utrecht"},
        {"condition": "bought", "categories": ["coffee"], "window": {"days": 90}},
        {"not": {"condition": "frequency", "min": 1, "window": {"days": 30}}},
    ]
}


@pytest.fixture
def marketer(client, staff_user):
    user = staff_user("Marketing")
    client.force_login(user)
    return user


@pytest.fixture
def gold(db):
    return Tier.objects.create(name="Gold", rank=50, threshold=5000)


def posted(tree_data: dict) -> QueryDict:
    query = QueryDict(mutable=True)
    for key, value in tree_data.items():
        if isinstance(value, list):
            query.setlist(key, value)
        else:
            query[key] = value
    return query


def lists(query: QueryDict) -> dict:
    """What the test client posts for a QueryDict: every value of a repeated field."""
    return dict(query.lists())


def as_browser_posts(node, data=None) -> QueryDict:
    """The form data a browser sends for the builder drawn from `node` (hidden inputs, selects,
    text inputs and ticked checkboxes), in document order."""
    data = data if data is not None else QueryDict(mutable=True)
    data.appendlist("node", node.id)
    data[f"{node.id}-parent"] = node.parent
    data[f"{node.id}-type"] = node.type
    if node.is_group:
        for child in node.children:
            as_browser_posts(child, data)
        return data
    data[f"{node.id}-condition"] = node.condition
    for param in node.params:
        if param.widget == segment_fields.MULTI:
            data.setlist(param.input_name, list(param.value))
        elif param.widget == segment_fields.SELECT and param.value == "" and param.choices:
            data[param.input_name] = param.choices[0][0]  # a browser sends the first option
        else:
            data[param.input_name] = param.value
    return data


# -- who may use the pages -----------------------------------------------------------------------


@pytest.mark.parametrize("role", ALLOWED)
def test_the_pages_render_for_marketing_and_administrators(client, staff_user, role, gold):
    client.force_login(staff_user(role))
    segment = Segment.objects.create(name="Gold in Utrecht", definition=README_EXAMPLE)
    for url in (
        reverse("segment-list"),
        reverse("segment-new"),
        reverse("segment-edit", args=[segment.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert_no_unmarked_inline_code(html, None)
    assert "Gold in Utrecht" in html
    assert 'hx-post="/segments/preview/"' in html


@pytest.mark.parametrize("role", REFUSED)
def test_the_pages_are_refused_to_other_roles(client, staff_user, role):
    client.force_login(staff_user(role))
    segment = Segment.objects.create(name="Everyone")
    gets = [
        reverse("segment-list"),
        reverse("segment-new"),
        reverse("segment-edit", args=[segment.pk]),
        reverse("segment-count", args=[segment.pk]),
        reverse("segment-node-new") + "?parent=root&type=condition",
        reverse("segment-node-params") + "?node=n1&n1-condition=tier",
        reverse("segment-node-remove"),
    ]
    for url in gets:
        assert client.get(url).status_code == 403, url
    posts = [
        reverse("segment-new"),
        reverse("segment-edit", args=[segment.pk]),
        reverse("segment-preview"),
        reverse("segment-snapshot", args=[segment.pk]),
        reverse("segment-presets"),
    ]
    for url in posts:
        assert client.post(url, {"node": "root", "root-type": "all"}).status_code == 403, url
    assert Segment.objects.count() == 1 and not SegmentSnapshot.objects.exists()


def test_the_sidebar_links_the_pages_for_marketing(client, marketer):
    html = client.get("/").content.decode()
    assert 'href="/segments/"' in html and 'href="/campaigns/"' in html


# -- building a tree through the form posts ------------------------------------------------------


def node_id_of(html: str) -> str:
    return re.search(r'name="node" value="([a-z0-9]+)"', html).group(1)


def test_a_marketer_builds_the_readme_example_through_the_form_and_saves_it(client, marketer, gold):
    # Rows are added one at a time; each comes from the server with a fresh id.
    ids = []
    for _ in range(3):
        response = client.get(reverse("segment-node-new"), {"parent": ROOT, "type": "condition"})
        assert response.status_code == 200
        assert response["HX-Trigger"] == "segment-changed"
        ids.append(node_id_of(response.content.decode()))
    group = node_id_of(
        client.get(reverse("segment-node-new"), {"parent": ROOT, "type": "group"}).content.decode()
    )
    inner = node_id_of(
        client.get(
            reverse("segment-node-new"), {"parent": group, "type": "condition"}
        ).content.decode()
    )
    tier, profile, bought = ids
    data = posted(
        {
            "name": "Gold in Utrecht, coffee lately",
            "description": "The README's example.",
            "reason": "Autumn campaign",
            "node": [ROOT, tier, profile, bought, group, inner],
            "root-parent": "",
            "root-type": "all",
            f"{tier}-parent": ROOT,
            f"{tier}-type": "condition",
            f"{tier}-condition": "tier",
            f"{tier}-in": ["Gold"],
            f"{profile}-parent": ROOT,
            f"{profile}-type": "condition",
            f"{profile}-condition": "profile",
            f"{profile}-key": "city",
            f"{profile}-test": "equals",
            f"{profile}-value": "Utrecht",
            f"{bought}-parent": ROOT,
            f"{bought}-type": "condition",
            f"{bought}-condition": "bought",
            f"{bought}-skus": "",
            f"{bought}-categories": "coffee",
            f"{bought}-window": "days",
            f"{bought}-window_days": "90",
            f"{group}-parent": ROOT,
            f"{group}-type": "not",
            f"{inner}-parent": group,
            f"{inner}-type": "condition",
            f"{inner}-condition": "frequency",
            f"{inner}-min": "1",
            f"{inner}-max": "",
            f"{inner}-window": "days",
            f"{inner}-window_days": "30",
        }
    )
    response = client.post(reverse("segment-new"), lists(data))
    assert response.status_code == 302, re.findall(r"errorlist.*", response.content.decode())
    segment = Segment.objects.get()
    assert segment.definition == README_EXAMPLE
    assert segment.created_by == marketer
    entry = AuditEntry.objects.get(action="segment_create")
    assert entry.actor == marketer and entry.reason == "Autumn campaign"
    assert entry.details["segment_id"] == segment.pk
    assert response["Location"] == reverse("segment-edit", args=[segment.pk])


def test_editing_a_segment_changes_it_and_records_what_changed(client, marketer, gold):
    segment = segment_save(name="Gold", definition={"all": []}, actor=marketer)
    data = as_browser_posts(builder_tree({"all": [{"condition": "tier", "in": ["Gold"]}]}))
    data.update({"name": "Gold members", "description": "", "reason": "Narrowed"})
    response = client.post(reverse("segment-edit", args=[segment.pk]), lists(data))
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "Gold members"
    assert segment.definition == {"all": [{"condition": "tier", "in": ["Gold"]}]}
    entry = AuditEntry.objects.get(action="segment_update")
    assert entry.details["fields"] == ["definition", "name"] and entry.reason == "Narrowed"


SAMPLES = [
    README_EXAMPLE,
    {"any": []},
    {"not": {"all": []}},
    {"not": {"any": [{"condition": "badge", "in": ["early-bird"]}]}},
    {"all": [{"condition": "profile", "key": "age", "equals": 2}]},
    {"all": [{"condition": "profile", "key": "zip", "equals": "2"}]},
    {"all": [{"condition": "profile", "key": "vip", "exists": False}]},
    {"all": [{"condition": "profile", "key": "pets", "in": ["cat", 3, True]}]},
    {"all": [{"condition": "profile", "key": "notes", "contains": "vegan"}]},
    {"all": [{"condition": "consent", "purpose": "sms"}]},
    {"all": [{"condition": "enrolled", "window": {"from": "2026-01-01", "until": "2026-01-31"}}]},
    {"all": [{"condition": "enrolment_channel", "in": ["app", "webshop"]}]},
    {"all": [{"condition": "last_purchase", "window": {"days": 30}}]},
    {"all": [{"condition": "monetary", "min": 12.5, "max": 100}]},
    {"all": [{"condition": "store_visited", "in": ["UTR-01"], "window": {"from": "2026-01-01"}}]},
    {"all": [{"condition": "engagement", "in": ["review"], "min": 2}]},
    {"all": [{"condition": "challenge_completed", "in": [4], "window": {"days": 7}}]},
    {"all": [{"condition": "balance", "max": 100}]},
    {"all": [{"condition": "points_expiring", "days": 30, "min": 50}]},
    {"all": [{"condition": "birthday", "days": 7}]},
    {"all": [{"condition": "nps", "min": 9, "max": 10}]},
    {"all": [{"condition": "segment", "id": 12}]},
    {"all": [{"condition": "rfm", "segment": "champions"}]},
]


@pytest.mark.parametrize("definition", SAMPLES)
def test_every_stored_tree_comes_back_unchanged_through_the_builders_form(definition):
    assert definition_from_post(as_browser_posts(builder_tree(definition))) == definition


def test_every_condition_has_form_fields():
    assert set(segment_fields.FIELDS) == set(CONDITIONS)


def test_a_bare_condition_is_shown_as_the_only_part_of_a_group():
    tree = builder_tree({"condition": "rfm", "segment": "lost"})
    assert definition_from_post(as_browser_posts(tree)) == {
        "all": [{"condition": "rfm", "segment": "lost"}]
    }


def test_picking_another_kind_draws_its_inputs(client, marketer, gold):
    response = client.get(reverse("segment-node-params"), {"node": "n7", "n7-condition": "tier"})
    html = response.content.decode()
    assert 'name="n7-in" value="Gold"' in html and 'type="checkbox"' in html
    assert response["HX-Trigger"] == "segment-changed"
    assert client.get(reverse("segment-node-params"), {"node": "Bad id!"}).status_code == 400


def test_removing_a_row_answers_empty_and_refreshes_the_preview(client, marketer):
    response = client.get(reverse("segment-node-remove"))
    assert response.status_code == 200 and response.content == b""
    assert response["HX-Trigger"] == "segment-changed"


# -- the live preview ----------------------------------------------------------------------------


@pytest.fixture
def known_members(gold):
    anna = MemberFactory(first_name="Anna", last_name="Gold", tier=gold, phone="+31612345678")
    consent_grant(member=anna, purpose=Consent.Purpose.MARKETING_EMAIL, channel="app")
    consent_grant(member=anna, purpose=Consent.Purpose.SMS, channel="app")
    bob = MemberFactory(first_name="Bob", last_name="Gold", tier=gold)
    consent_grant(member=bob, purpose=Consent.Purpose.PUSH, channel="app")
    MemberFactory(first_name="Carla", last_name="Silver")
    return anna, bob


def preview_data(definition, **extra) -> dict:
    data = as_browser_posts(builder_tree(definition))
    data.update(extra)
    return lists(data)


def preview(client, definition, **extra):
    return client.post(reverse("segment-preview"), preview_data(definition, **extra))


def test_the_preview_counts_reachable_members_and_shows_a_sample(
    client, marketer, known_members, django_assert_max_num_queries
):
    anna, bob = known_members
    data = preview_data({"all": [{"condition": "tier", "in": ["Gold"]}]})
    # The session, the user, their permissions (2), the counts (1) and the sample (1), and for
    # each the tier ladder (the tests keep no per-process copy of it: one query each); on
    # PostgreSQL the counts' own transaction too (savepoint, the big read's settings, release).
    with django_assert_max_num_queries(11):
        response = client.post(reverse("segment-preview"), data)
    assert response.status_code == 200
    html = response.content.decode()
    figures = re.findall(r'<div class="value"[^>]*>(\d+)</div>', html)
    assert figures == ["2", "1", "1", "1"]  # members, e-mail, SMS, push
    assert "Anna Gold" in html and "Bob Gold" in html and "Carla" not in html
    assert reverse("admin:members_member_change", args=[anna.pk]) in html or f"/{anna.pk}" in html
    assert_no_unmarked_inline_code(html, None)


def test_the_preview_counts_with_one_query_however_many_members(
    client, marketer, gold, django_assert_max_num_queries
):
    MemberFactory.create_batch(30, tier=gold)
    data = preview_data({"all": [{"condition": "tier", "in": ["Gold"]}]})
    with django_assert_max_num_queries(11):
        response = client.post(reverse("segment-preview"), data)
    assert re.findall(r'<div class="value"[^>]*>(\d+)</div>', response.content.decode())[0] == "30"
    assert response.content.decode().count("<li>") == 10


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"all": [{"condition": "frequency", "min": "ten"}]}, "must be a number"),
        ({"all": [{"condition": "tier"}]}, "a list of names"),
        ({"all": [{"condition": "nosuch"}]}, "Unknown segment condition"),
        ({"all": [{"condition": "segment", "id": 999999}]}, "There is no segment 999999"),
    ],
)
def test_an_invalid_tree_shows_the_validation_message(client, marketer, definition, message):
    response = preview(client, definition)
    assert response.status_code == 200
    assert message in response.content.decode()


def test_a_forged_or_broken_form_gets_a_message_not_an_error(client, marketer):
    response = client.post(reverse("segment-preview"), {"node": ["root"], "root-type": "bogus"})
    assert response.status_code == 200 and "Not a valid segment" in response.content.decode()
    response = client.post(reverse("segment-preview"), {})
    assert response.status_code == 200 and "reload the page" in response.content.decode()
    deep = {"node": ["root"], "root-type": "all"}
    query = posted(deep)
    parent = "root"
    for depth in range(20):
        child = f"d{depth}"
        query.appendlist("node", child)
        query[f"{child}-parent"] = parent
        query[f"{child}-type"] = "all"
        parent = child
    response = client.post(reverse("segment-preview"), lists(query))
    assert response.status_code == 200 and "at most 8 deep" in response.content.decode()


def test_a_segment_cannot_be_saved_to_contain_itself(client, marketer):
    segment = segment_save(name="Loop", definition={"all": []}, actor=marketer)
    definition = {"all": [{"condition": "segment", "id": segment.pk}]}
    response = preview(client, definition, segment=str(segment.pk))
    assert "cannot contain itself" in response.content.decode()
    data = as_browser_posts(builder_tree(definition))
    data.update({"name": "Loop"})
    response = client.post(reverse("segment-edit", args=[segment.pk]), lists(data))
    assert response.status_code == 400 and "cannot contain itself" in response.content.decode()
    segment.refresh_from_db()
    assert segment.definition == {"all": []}


def test_saving_an_invalid_tree_shows_the_error_and_writes_nothing(client, marketer):
    data = as_browser_posts(builder_tree({"all": [{"condition": "balance", "min": "lots"}]}))
    data.update({"name": "Rich"})
    response = client.post(reverse("segment-new"), lists(data))
    assert response.status_code == 400
    html = response.content.decode()
    assert "must be a number" in html
    assert 'value="lots"' in html  # the form comes back as it was typed
    assert not Segment.objects.exists() and not AuditEntry.objects.exists()


def test_a_taken_name_is_a_form_error(client, marketer):
    Segment.objects.create(name="Everyone")
    data = as_browser_posts(builder_tree({"all": []}))
    data.update({"name": "Everyone"})
    response = client.post(reverse("segment-new"), lists(data))
    assert response.status_code == 400 and "already exists" in response.content.decode()
    assert Segment.objects.count() == 1


# -- starting points, snapshots, the list --------------------------------------------------------


def test_a_preset_or_a_copy_is_a_starting_point(client, marketer):
    html = client.get(reverse("segment-new"), {"preset": "champions"}).content.decode()
    assert 'value="rfm" selected' in html and 'value="champions" selected' in html
    source = Segment.objects.create(
        name="Source", definition={"any": [{"condition": "balance", "min": 5}]}
    )
    html = client.get(reverse("segment-new"), {"from": source.pk}).content.decode()
    assert 'value="any" selected' in html and 'value="5"' in html


def test_the_rfm_presets_can_be_created_from_the_list(client, marketer):
    assert "Create the RFM preset segments" in client.get(reverse("segment-list")).content.decode()
    response = client.post(reverse("segment-presets"))
    assert response.status_code == 302
    assert Segment.objects.filter(name__startswith="RFM: ").count() == 8
    assert "Create the RFM preset" not in client.get(reverse("segment-list")).content.decode()


def test_freezing_a_snapshot_runs_as_a_job(
    client, marketer, known_members, django_capture_on_commit_callbacks
):
    segment = Segment.objects.create(
        name="Gold", definition={"all": [{"condition": "tier", "in": ["Gold"]}]}
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("segment-snapshot", args=[segment.pk]))
    assert response.status_code == 302 and response["Location"].startswith("/jobs/")
    snapshot = SegmentSnapshot.objects.get(segment=segment)
    assert snapshot.size == 2
    job_page = client.get(response["Location"]).content.decode()
    assert "2 members" in job_page


def test_the_count_button_counts_a_saved_segment(client, marketer, known_members):
    segment = Segment.objects.create(
        name="Gold", definition={"all": [{"condition": "tier", "in": ["Gold"]}]}
    )
    response = client.get(reverse("segment-count", args=[segment.pk]))
    assert response.content.decode().strip() == "<strong>2</strong>"


def test_the_count_and_the_preview_say_what_an_rfm_preset_was_counted_from(
    client, marketer, known_members
):
    from campaigns.services import rfm_scores_refresh

    lost = {"all": [{"condition": "rfm", "segment": "lost"}]}
    segment = Segment.objects.create(name="Lost", definition=lost)
    counted = client.get(reverse("segment-count", args=[segment.pk])).content.decode()
    assert "ranked now from the purchases" in counted
    assert "ranked now from the purchases" in preview(client, lost).content.decode()

    rfm_scores_refresh()
    counted = client.get(reverse("segment-count", args=[segment.pk])).content.decode()
    assert "RFM from the nightly scores of" in counted and "ranked now" not in counted
    previewed = preview(client, lost).content.decode()
    assert "RFM from the nightly scores of" in previewed
    assert_no_unmarked_inline_code(previewed, None)
    # A segment without an RFM condition says nothing of it.
    assert (
        "rfm-basis"
        not in preview(client, {"all": [{"condition": "tier", "in": ["Gold"]}]}).content.decode()
    )


def make_segments(count: int, marketer):
    for n in range(count):
        segment = Segment.objects.create(name=f"Segment {n:02d}", description="Some members")
        segment_snapshot_take(definition=segment.definition, segment=segment)
        Campaign.objects.create(name=f"Campaign {n}", kind="message", segment=segment)
        EarningRuleFactory(name=f"Rule {n}").segments.add(segment)


@pytest.mark.parametrize("count", [2, 20])
def test_the_list_answers_in_a_bounded_number_of_queries(
    client, marketer, count, django_assert_max_num_queries
):
    make_segments(count, marketer)
    with django_assert_max_num_queries(9):
        response = client.get(reverse("segment-list"))
    html = response.content.decode()
    assert "Segment 00" in html and "Campaign 0" in html and "Rule 0" in html
    assert_no_unmarked_inline_code(html, None)


@pytest.mark.parametrize("rows", [1, 12])
def test_the_builder_answers_in_a_bounded_number_of_queries(
    client, marketer, gold, rows, django_assert_max_num_queries
):
    definition = {"all": [{"condition": "tier", "in": ["Gold"]}] * rows}
    segment = Segment.objects.create(name="Many rows", definition=definition)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("segment-edit", args=[segment.pk]))
    assert response.content.decode().count('value="tier" selected') == rows
