"""Marketing edits segments in the admin: the definition pretty and validated, the live count
and reach on the change page, and freezing a segment into a read-only snapshot."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from campaigns.models import Segment, SegmentSnapshot, SegmentSnapshotMember
from members.models import Consent
from members.services import consent_grant
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

VIP = {"condition": "profile", "key": "vip", "equals": True}


@pytest.fixture
def marketing(client, staff_user):
    client.force_login(staff_user("Marketing"))
    return client


def test_marketing_adds_a_segment_and_sees_its_count_and_reach(marketing):
    people = [MemberFactory(profile={"vip": True}) for _ in range(3)]
    MemberFactory()
    consent_grant(member=people[0], purpose=Consent.Purpose.MARKETING_EMAIL, channel="app")
    response = marketing.post(
        reverse("admin:campaigns_segment_add"),
        {
            "name": "VIP",
            "description": "",
            "definition": '{"condition": "profile", "key": "vip", "equals": true}',
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    segment = Segment.objects.get(name="VIP")
    assert segment.definition == VIP
    assert segment.created_by is not None
    page = marketing.get(reverse("admin:campaigns_segment_change", args=[segment.pk]))
    html = page.content.decode()
    assert "\n  &quot;condition&quot;: &quot;profile&quot;" in html  # indented JSON
    admin_form = page.context["adminform"]
    assert admin_form.form.initial["definition"] == VIP
    readonly = {
        f.field["name"]: f.contents()
        for fieldset in admin_form
        for line in fieldset
        for f in line
        if f.is_readonly
    }
    assert readonly["members_now"] == "3"
    assert readonly["reachable_now"] == "e-mail 1, SMS 0, push 0"


def test_the_change_page_says_what_an_rfm_count_was_counted_from(marketing):
    from campaigns.services import rfm_scores_refresh

    segment = Segment.objects.create(
        name="Lost", definition={"condition": "rfm", "segment": "lost"}
    )

    def members_now():
        page = marketing.get(reverse("admin:campaigns_segment_change", args=[segment.pk]))
        return {
            f.field["name"]: f.contents()
            for fieldset in page.context["adminform"]
            for line in fieldset
            for f in line
            if f.is_readonly
        }["members_now"]

    assert members_now() == "0 (RFM ranked now from the purchases)"
    rfm_scores_refresh()
    assert members_now().startswith("0 (RFM from the nightly scores of ")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"condition": "nonsense"}', "Unknown segment condition"),
        ('{"condition": "frequency", "min": 5, "max": 1}', "above"),
        ("{not json", "JSON"),
    ],
)
def test_an_invalid_definition_is_refused_with_the_reason(marketing, text, problem):
    response = marketing.post(
        reverse("admin:campaigns_segment_add"),
        {"name": "Bad", "description": "", "definition": text},
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["definition"]
    assert problem in " ".join(errors)
    assert not Segment.objects.exists()


def test_a_cycle_is_refused_on_the_change_page(marketing):
    first = Segment.objects.create(name="First", definition={"all": []})
    second = Segment.objects.create(
        name="Second", definition={"condition": "segment", "id": first.pk}
    )
    response = marketing.post(
        reverse("admin:campaigns_segment_change", args=[first.pk]),
        {
            "name": "First",
            "description": "",
            "definition": f'{{"condition": "segment", "id": {second.pk}}}',
        },
    )
    assert response.status_code == 200
    assert "contain itself" in " ".join(response.context["adminform"].form.errors["definition"])


def test_freeze_into_snapshot_and_the_snapshot_is_read_only(marketing):
    inside = MemberFactory(profile={"vip": True})
    MemberFactory()
    segment = Segment.objects.create(name="VIP", definition=VIP)
    response = marketing.post(
        reverse("admin:campaigns_segment_changelist"),
        {"action": "snapshot_take", "_selected_action": [segment.pk]},
        follow=True,
    )
    assert "1 snapshot taken." in [str(m) for m in get_messages(response.wsgi_request)]
    snapshot = SegmentSnapshot.objects.get(segment=segment)
    assert snapshot.size == 1
    assert list(
        SegmentSnapshotMember.objects.filter(snapshot=snapshot).values_list("member", flat=True)
    ) == [inside.pk]
    page = marketing.get(reverse("admin:campaigns_segmentsnapshot_change", args=[snapshot.pk]))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert marketing.get(reverse("admin:campaigns_segmentsnapshot_add")).status_code == 403
    listed = marketing.get(reverse("admin:campaigns_segmentsnapshot_changelist"))
    assert list(listed.context["cl"].result_list) == [snapshot]


def test_a_segment_that_limits_an_earning_rule_cannot_be_deleted(marketing):
    from tests.campaigns.factories import EarningRuleFactory

    used = Segment.objects.create(name="VIP", definition=VIP)
    unused = Segment.objects.create(name="Old", definition=VIP)
    EarningRuleFactory(name="VIP bonus").segments.add(used)
    page = marketing.get(reverse("admin:campaigns_segment_delete", args=[used.pk]))
    assert page.status_code == 403
    response = marketing.post(
        reverse("admin:campaigns_segment_changelist"),
        {"action": "delete_selected", "_selected_action": [used.pk, unused.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert Segment.objects.count() == 2
    marketing.post(reverse("admin:campaigns_segment_delete", args=[unused.pk]), {"post": "yes"})
    assert list(Segment.objects.values_list("name", flat=True)) == ["VIP"]
