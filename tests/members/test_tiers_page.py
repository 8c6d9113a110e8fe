"""/tiers/: the tier ladder as marketing reads it (issue 14)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from members.models import Member, TierHistory
from members.selectors import tier_ladder
from tests.factories import MemberFactory
from tests.members.factories import ladder

pytestmark = pytest.mark.django_db

URL = reverse("tiers")


def moved(member, source, target, *, days_ago=1):
    return TierHistory.objects.create(
        member=member,
        from_tier=source,
        to_tier=target,
        reason=TierHistory.Reason.QUALIFIED,
        at=timezone.now() - timedelta(days=days_ago),
    )


@pytest.fixture
def tiers():
    bronze, silver, gold = ladder()
    MemberFactory.create_batch(3, tier=bronze)
    MemberFactory.create_batch(2, tier=silver)
    MemberFactory(tier=gold)
    MemberFactory(tier=gold, status=Member.Status.ERASED)  # not counted
    someone = MemberFactory(tier=silver)
    moved(someone, bronze, silver)
    moved(someone, bronze, silver, days_ago=2)
    moved(someone, gold, silver, days_ago=3)
    moved(someone, silver, gold, days_ago=29)
    moved(someone, bronze, gold, days_ago=31)  # too old
    moved(someone, None, bronze)  # enrolment: neither up nor down
    return bronze, silver, gold


def test_the_ladder_counts_members_per_tier_and_the_moves_of_the_last_30_days(tiers):
    steps = tier_ladder(since=timezone.now() - timedelta(days=30))

    assert [step.tier.name for step in steps] == ["Bronze", "Silver", "Gold"]
    assert [step.members for step in steps] == [3, 3, 1]
    assert [step.moved_up for step in steps] == [0, 2, 1]
    assert [step.moved_down for step in steps] == [0, 1, 0]
    assert [step.left for step in steps] == [2, 1, 1]


@pytest.mark.parametrize("role", ["Marketing", "Customer service"])
def test_marketing_and_service_read_the_ladder_without_the_admin_links(
    client, staff_user, tiers, role, django_assert_max_num_queries
):
    client.force_login(staff_user(role))

    with django_assert_max_num_queries(8):
        response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Silver" in html and "1,500" in html
    assert "30 days" in html
    assert response.context["moved_up"] == 3
    assert response.context["moved_down"] == 1
    assert "/admin/members/tier/" not in html


def test_an_administrator_gets_the_admin_change_link_of_each_tier(client, staff_user, tiers):
    client.force_login(staff_user("Administrator"))

    response = client.get(URL)

    assert response.status_code == 200
    html = response.content.decode()
    for tier in tiers:
        assert reverse("admin:members_tier_change", args=[tier.pk]) in html
    assert reverse("admin:members_tier_add") in html


def test_finance_without_the_tier_permission_is_refused(client, staff_user, tiers):
    client.force_login(staff_user("Finance"))

    assert client.get(URL).status_code == 403


def test_the_sidebar_entry_opens_the_page(client, staff_user):
    client.force_login(staff_user("Marketing"))

    response = client.get(reverse("home"))

    assert f'href="{URL}"' in response.content.decode()


def test_a_signed_out_visitor_is_sent_to_sign_in(client):
    response = client.get(URL)

    assert response.status_code == 302 and "/login/" in response["Location"]
