"""The back office of messages: templates and caps for marketing, the message log read-only."""

import pytest
from django.urls import reverse

from campaigns.models import CampaignMessage, FrequencyCap, MessageTemplate
from campaigns.services import campaign_send_start
from tests.campaigns.sending import member_with, message_campaign

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketing(client, staff_user):
    client.force_login(staff_user("Marketing"))
    return client


def test_marketing_writes_a_template_and_a_broken_one_is_refused(marketing):
    campaign = message_campaign(channels=(), name="Autumn")
    url = reverse("admin:campaigns_messagetemplate_add")
    form = {"campaign": campaign.pk, "channel": "sms", "language": "nl", "subject": ""}
    refused = marketing.post(url, {**form, "body": "Hoi {% debug %}"})
    assert refused.status_code == 200 and "body" in refused.context["adminform"].form.errors
    assert marketing.post(url, {**form, "body": "Hoi {{ first_name }}"}).status_code == 302
    assert MessageTemplate.objects.get(campaign=campaign).language == "nl"


def test_the_message_log_is_read_only_and_filters_by_status(marketing, client, staff_user):
    member_with("sms")
    member_with()
    campaign = message_campaign()
    campaign_send_start(campaign=campaign, fan_out=False)
    url = reverse("admin:campaigns_campaignmessage_changelist")
    listed = marketing.get(url, {"status__exact": "planned", "channel__exact": "sms"})
    assert len(listed.context["cl"].result_list) == 2
    message = CampaignMessage.objects.first()
    page = marketing.get(reverse("admin:campaigns_campaignmessage_change", args=[message.pk]))
    assert page.context["has_change_permission"] is False
    client.force_login(staff_user("Customer service"))
    assert client.get(url).status_code == 200


def test_marketing_sets_frequency_caps(marketing):
    url = reverse("admin:campaigns_frequencycap_add")
    form = {"channel": "push", "max_messages": 2, "period": 12, "unit": "hours", "active": "on"}
    response = marketing.post(url, form)
    assert response.status_code == 302
    cap = FrequencyCap.objects.get(channel="push")
    assert (cap.max_messages, cap.period, cap.unit) == (2, 12, "hours")
    assert marketing.get(reverse("admin:campaigns_frequencycap_changelist")).status_code == 200


def test_a_template_page_previews_it_for_a_member_of_the_audience(marketing):
    anna = member_with("sms", first_name="Anna")
    campaign = message_campaign(body="Hoi {{ first_name }}, {{ balance }} punten")
    template = campaign.message_templates.get()
    page = marketing.get(reverse("admin:campaigns_messagetemplate_change", args=[template.pk]))
    assert f"For member {anna.pk}:" in page.content.decode()
    assert "Hoi Anna, 0 punten" in page.content.decode()
