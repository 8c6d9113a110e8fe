"""Rendering a campaign's message for one member: language, variables, the restricted engine."""

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from campaigns.errors import MessageTemplateMissing
from campaigns.message_rendering import message_preview
from campaigns.models import MessageTemplate
from ledger.services import points_earn
from members.models import Tier
from tests.campaigns.sending import message_campaign
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

DUTCH_MONTHS = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
]
ENGLISH_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

EN = "Hi {{ first_name }}, {{ points_expiring }} of your {{ balance }} {{ tier }} points expire on {{ points_expiring_at|date:'j F' }}."  # noqa: E501
NL = "Hoi {{ first_name }}, {{ points_expiring }} van je {{ balance }} {{ tier }}-punten vervallen op {{ points_expiring_at|date:'j F' }}."  # noqa: E501


@pytest.fixture
def campaign():
    campaign = message_campaign(channels=(), name="Expiry")
    MessageTemplate.objects.create(
        campaign=campaign, channel="email", language="en", subject="Your points", body=EN
    )
    MessageTemplate.objects.create(
        campaign=campaign, channel="email", language="nl", subject="Je punten", body=NL
    )
    return campaign


@pytest.fixture
def expiry():
    return timezone.now() + timedelta(days=10)


def member_with_points(locale, expiry):
    gold = Tier.objects.get_or_create(name="Gold", defaults={"rank": 50, "threshold": 5000})[0]
    member = MemberFactory(first_name="Sanne", locale=locale, tier=gold)
    points_earn(member=member, points=300)
    points_earn(member=member, points=40, expires_at=expiry)
    return member


def day_month(moment, months):
    local = moment.astimezone(ZoneInfo("Europe/Amsterdam"))
    return f"{local.day} {months[local.month - 1]}"


def test_a_dutch_member_gets_the_dutch_template_with_dutch_dates(campaign, expiry):
    member = member_with_points("nl", expiry)
    message = message_preview(campaign=campaign, channel="email", member=member)
    assert message.language == "nl" and message.subject == "Je punten"
    assert message.body == (
        f"Hoi Sanne, 40 van je 340 Gold-punten vervallen op {day_month(expiry, DUTCH_MONTHS)}."
    )


def test_an_english_or_unknown_language_member_gets_english(campaign, expiry):
    for locale in ("en", "", "de-DE"):
        member = member_with_points(locale, expiry)
        message = message_preview(campaign=campaign, channel="email", member=member)
        assert message.language == "en"
        assert message.body == (
            f"Hi Sanne, 40 of your 340 Gold points expire on {day_month(expiry, ENGLISH_MONTHS)}."
        )


def test_the_preview_may_choose_the_language_and_falls_back_to_a_template_it_has(campaign, expiry):
    member = member_with_points("nl", expiry)
    assert message_preview(campaign=campaign, channel="email", member=member, language="en").body
    assert (
        message_preview(campaign=campaign, channel="email", member=member, language="en").language
        == "en"
    )
    MessageTemplate.objects.filter(campaign=campaign, language="en").delete()
    english = MemberFactory(locale="en")
    # No English template: the Dutch one rather than no message.
    assert message_preview(campaign=campaign, channel="email", member=english).language == "nl"
    with pytest.raises(MessageTemplateMissing):
        message_preview(campaign=campaign, channel="sms", member=english)


def test_nothing_expiring_renders_zero_and_no_date():
    campaign = message_campaign(
        channels=("sms",),
        body="{% if points_expiring %}Hurry{% else %}All {{ balance }} safe{% endif %}"
        "{{ points_expiring_at|date:'j F' }}",
    )
    member = MemberFactory()
    assert message_preview(campaign=campaign, channel="sms", member=member).body == "All 0 safe"


@pytest.mark.parametrize(
    "body",
    [
        "{% debug %}",
        "{% load static %}",
        "{% include 'admin/base.html' %}",
        "{% extends 'admin/base.html' %}",
        "{% url 'admin:index' %}",
        "{% csrf_token %}",
        "{% now 'Y' %}",
        "{% if %}",
    ],
)
def test_tags_outside_the_text_ones_do_not_compile(body):
    campaign = message_campaign(channels=(), name="Sandbox")
    template = MessageTemplate(campaign=campaign, channel="sms", language="en", body=body)
    with pytest.raises(ValidationError) as refused:
        template.full_clean()
    assert "body" in refused.value.message_dict


def test_a_template_sees_only_the_values_passed_not_the_member():
    campaign = message_campaign(
        channels=("sms",), body="[{{ member.email }}{{ email }}{{ campaign.name }}]"
    )
    member = MemberFactory(email="secret@example.nl", first_name="Anna")
    assert message_preview(campaign=campaign, channel="sms", member=member).body == "[]"


def test_text_is_not_escaped_html_is_and_a_subject_stays_one_line():
    campaign = message_campaign(channels=(), name="Escape")
    MessageTemplate.objects.create(
        campaign=campaign,
        channel="email",
        language="en",
        subject="Hi\n{{ first_name }}\r\nBcc: x@example.org",
        body="Dear {{ first_name }}",
        html_body="<p>Dear {{ first_name }}</p>",
    )
    member = MemberFactory(first_name="Tom & <Jerry>")
    message = message_preview(campaign=campaign, channel="email", member=member)
    assert message.subject == "Hi Tom & <Jerry> Bcc: x@example.org"
    assert message.body == "Dear Tom & <Jerry>"
    assert message.html_body == "<p>Dear Tom &amp; &lt;Jerry&gt;</p>"


def test_a_message_names_the_members_offer_in_the_templates_language():
    from campaigns.models import CampaignOffer
    from tests.campaigns.offering import active_campaign
    from tests.rewards.factories import RewardFactory

    member = MemberFactory(locale="nl")
    offer_campaign = active_campaign(
        starts_at=timezone.now() - timedelta(days=1), ends_at=timezone.now() + timedelta(days=9)
    )
    reward = RewardFactory(name_en="Free coffee", name_nl="Gratis koffie", points=150)
    CampaignOffer.objects.create(campaign=offer_campaign, reward=reward, rule="fallback")
    campaign = message_campaign(
        channels=("sms",), body="{% if offer %}{{ offer }} for {{ offer_points }}{% endif %}"
    )
    MessageTemplate.objects.create(
        campaign=campaign, channel="sms", language="nl", subject="Nieuws",
        body="{{ offer }} voor {{ offer_points }}",
    )  # fmt: skip
    assert message_preview(campaign=campaign, channel="sms", member=member).body == (
        "Gratis koffie voor 150"
    )
    assert message_preview(campaign=campaign, channel="sms", member=member, language="en").body == (
        "Free coffee for 150"
    )
    # Without a running offer campaign there is no offer to name.
    offer_campaign.status = "ended"
    offer_campaign.save(update_fields=["status"])
    assert (
        message_preview(campaign=campaign, channel="sms", member=member, language="en").body == ""
    )


def test_a_template_without_offers_does_not_look_them_up(monkeypatch):
    from campaigns import message_rendering

    asked = []
    monkeypatch.setattr(
        message_rendering, "member_offers", lambda **kwargs: asked.append(kwargs) or []
    )
    member = MemberFactory(first_name="Anna")
    plain = message_campaign(channels=("sms",), body="Hello {{ first_name }}")
    message_preview(campaign=plain, channel="sms", member=member)
    assert asked == []
    named = message_campaign(
        channels=("sms",), name="Offers", body="{{ offer|default:'nothing' }} for you"
    )
    assert message_preview(campaign=named, channel="sms", member=member).body == "nothing for you"
    assert len(asked) == 1
