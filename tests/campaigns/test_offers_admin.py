"""The back office for offers and results: marketing edits a campaign's offers and reads its
results against the control group; a refresh is a job, not the page's work."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import CampaignOffer, CampaignResult
from campaigns.services import campaign_results_refresh
from tests.campaigns.offering import active_campaign, salt_splitting
from tests.campaigns.purchasing import T0
from tests.factories import MemberFactory
from tests.rewards.factories import RewardFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(client, staff_user):
    client.force_login(staff_user("Marketing"))
    return client


def test_marketing_adds_an_offer_to_an_offer_campaign(marketing):
    campaign = active_campaign()
    reward = RewardFactory(offer_only=True)
    response = marketing.post(
        reverse("admin:campaigns_campaignoffer_add"),
        {"campaign": campaign.pk, "priority": 3, "rule": "top_category", "category": "tea",
         "days": "", "reward": reward.pk},
    )  # fmt: skip
    assert response.status_code == 302, response.context["adminform"].errors
    offer = CampaignOffer.objects.get()
    assert (offer.campaign, offer.reward, offer.category) == (campaign, reward, "tea")
    # The form says what the database refuses, before it gets there.
    response = marketing.post(
        reverse("admin:campaigns_campaignoffer_add"),
        {"campaign": campaign.pk, "priority": 0, "rule": "bought_category", "category": "tea",
         "days": "", "reward": reward.pk},
    )  # fmt: skip
    assert response.status_code == 200
    assert CampaignOffer.objects.count() == 1


def test_results_page_shows_the_lifts_and_refresh_runs_the_job(
    marketing, django_capture_on_commit_callbacks
):
    a, b, c, d = (MemberFactory() for _ in range(4))
    campaign = active_campaign(
        starts_at=timezone.now() - timedelta(days=10), ends_at=timezone.now() - timedelta(days=5),
        control_basis_points=5000, salt=salt_splitting([a, b], [c, d]),
    )  # fmt: skip
    url = reverse("admin:campaigns_campaignresult_campaign", args=[campaign.pk])
    page = marketing.get(url)
    assert page.status_code == 200
    assert page.context["results"].windows == []

    with django_capture_on_commit_callbacks(execute=True):
        assert marketing.post(url).status_code == 302
    assert CampaignResult.objects.filter(campaign=campaign).count() == 7 * 2

    page = marketing.get(url)
    assert [w.window for w in page.context["results"].windows] == ["campaign", "follow_up"]
    assert "Welch" in page.content.decode()
    listed = marketing.get(reverse("admin:campaigns_campaignresult_changelist"))
    assert listed.status_code == 200
    assert url in listed.content.decode()


def test_the_results_page_warns_of_a_sample_ratio_mismatch(marketing):
    campaign = active_campaign(starts_at=T0, ends_at=T0 + timedelta(days=5))
    campaign_results_refresh(campaign=campaign, now=T0 + timedelta(days=1))
    CampaignResult.objects.filter(campaign=campaign).update(control_n=30, treated_n=3)
    campaign.control_basis_points = 5000
    campaign.save()
    page = marketing.get(reverse("admin:campaigns_campaignresult_campaign", args=[campaign.pk]))
    assert "Sample-ratio mismatch" in page.content.decode()


def test_customer_service_cannot_see_results(client, staff_user):
    client.force_login(staff_user("Customer service"))
    campaign = active_campaign()
    url = reverse("admin:campaigns_campaignresult_campaign", args=[campaign.pk])
    assert client.get(url).status_code == 403
    assert client.post(url).status_code == 403
