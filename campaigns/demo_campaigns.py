"""Demo campaigns: a finished message campaign with its control group and results, a running
earning campaign with a budget, a scheduled offer campaign, and a few segments.

Everything goes through the services a marketer's clicks call (schedule, start, send, end,
refresh results), with the moments set in the past where the story needs it, so the demo shows
what a real programme would hold. The demo's e-mails go to Django's in-memory mailbox: loading
demo data e-mails nobody, yet every message is planned, claimed, checked against consent and
frequency caps and recorded like a real send.
"""

from datetime import timedelta
from decimal import Decimal
from unittest import mock

from django.contrib.auth import get_user_model
from django.test.utils import override_settings
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, CampaignOffer, EarningRule, MessageTemplate, Segment
from rewards.models import Reward

FINISHED = "Autumn newsletter"

SEGMENTS = [
    (
        "Coffee buyers, last 90 days",
        "Members who bought coffee in the last 90 days.",
        {"all": [{"condition": "bought", "categories": ["coffee"], "window": {"days": 90}}]},
    ),
    (
        "Reachable by e-mail",
        "Members who agreed to marketing e-mail.",
        {"all": [{"condition": "consent", "purpose": "marketing_email"}]},
    ),
    (
        "Lapsed: bought before, not in the last 3 weeks",
        "Members with at least one purchase, none in the last 21 days.",
        {
            "all": [
                {"condition": "frequency", "min": 1},
                {"not": {"condition": "frequency", "min": 1, "window": {"days": 21}}},
            ]
        },
    ),
]


def _segment(name: str) -> Segment:
    return Segment.objects.get(name=name)


def _finished_newsletter(*, actor, now) -> Campaign:
    """Sent 75 days ago to members reachable by e-mail, a fifth held out; ended 45 days ago."""
    start, end = now - timedelta(days=75), now - timedelta(days=45)
    campaign = Campaign.objects.create(
        name=FINISHED,
        description="Seasonal news with the member's balance; a fifth of the audience held out.",
        kind=Campaign.Kind.MESSAGE,
        segment=_segment("Reachable by e-mail"),
        starts_at=start,
        ends_at=end,
        control_basis_points=2000,
        created_by=actor,
    )
    for language, subject, body in [
        (
            "en",
            "Autumn at the shop, {{ first_name }}",
            "Hello {{ first_name }},\n\nYou have {{ balance }} points"
            "{% if tier %} and you are {{ tier }}{% endif %}."
            "{% if points_expiring %} {{ points_expiring }} of them expire on "
            '{{ points_expiring_at|date:"j F" }}.{% endif %}\n\nSee you soon!',
        ),
        (
            "nl",
            "Herfst in de winkel, {{ first_name }}",
            "Hallo {{ first_name }},\n\nU hebt {{ balance }} punten"
            "{% if tier %} en u bent {{ tier }}{% endif %}."
            "{% if points_expiring %} Daarvan vervallen er {{ points_expiring }} op "
            '{{ points_expiring_at|date:"j F" }}.{% endif %}\n\nTot snel!',
        ),
    ]:
        MessageTemplate.objects.create(
            campaign=campaign, channel="email", language=language, subject=subject, body=body
        )
    services.campaign_schedule(
        campaign=campaign, actor=actor, reason="Demo: planned", now=start - timedelta(days=2)
    )
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
        services.campaign_activate(campaign=campaign, actor=actor, reason="Demo: sent", now=start)
        # Starting plans the messages once committed (campaigns.services.lifecycle); planning
        # here too is harmless (a unique key) and holds inside a caller's transaction. They are
        # sent in this process, rather than by a worker that `make run` starts only afterwards,
        # and dated at the campaign's start (the send's service takes its time from the clock),
        # as they would have been then.
        services.campaign_send_start(campaign=campaign, now=start, fan_out=False)
        with mock.patch("django.utils.timezone.now", return_value=start + timedelta(minutes=5)):
            services.messages_send(message_ids=services.messages_due(campaign=campaign, now=start))
    campaign.refresh_from_db()
    services.campaign_end(campaign=campaign, actor=actor, reason="Demo: over", now=end)
    campaign.refresh_from_db()
    services.campaign_results_refresh(campaign=campaign, now=now)
    return campaign


def _running_win_back(*, actor, now) -> Campaign:
    """Double points for lapsed members for four weeks, with a points budget and a cap each."""
    start = now - timedelta(days=3)
    campaign = Campaign.objects.create(
        name="Win back: double points",
        description="Lapsed members earn double points for four weeks.",
        kind=Campaign.Kind.EARNING,
        segment=_segment("Lapsed: bought before, not in the last 3 weeks"),
        starts_at=start,
        ends_at=start + timedelta(days=28),
        control_basis_points=1000,
        budget_points=20_000,
        member_cap_points=500,
        member_cap_period="month",
        created_by=actor,
    )
    EarningRule.objects.create(
        name="Win back: double points",
        kind=EarningRule.Kind.MULTIPLIER,
        multiplier=Decimal(2),
        campaign=campaign,
    )
    services.campaign_schedule(
        campaign=campaign, actor=actor, reason="Demo: approved", now=start - timedelta(days=1)
    )
    services.campaign_activate(campaign=campaign, actor=actor, reason="Demo: started", now=start)
    campaign.refresh_from_db()
    services.campaign_results_refresh(campaign=campaign, now=now)
    return campaign


def _scheduled_coffee_offer(*, actor, now) -> Campaign:
    """Next week: coffee buyers get a free coffee, everyone else in the segment a croissant."""
    start = now + timedelta(days=7)
    campaign = Campaign.objects.create(
        name="Coffee lovers' offer",
        description="A personal offer from each member's own shopping.",
        kind=Campaign.Kind.OFFER,
        segment=_segment("Coffee buyers, last 90 days"),
        starts_at=start,
        ends_at=start + timedelta(days=30),
        control_basis_points=1000,
        created_by=actor,
    )
    coffee = Reward.objects.create(
        kind=Reward.Kind.PRODUCT,
        name_en="Free bag of coffee (250 g)",
        name_nl="Gratis zak koffie (250 g)",
        points=200,
        offer_only=True,
    )
    pastry = Reward.objects.create(
        kind=Reward.Kind.PRODUCT,
        name_en="Four croissants",
        name_nl="Vier croissants",
        points=150,
        offer_only=True,
    )
    CampaignOffer.objects.create(
        campaign=campaign, reward=coffee, rule="top_category", category="coffee", priority=10
    )
    CampaignOffer.objects.create(campaign=campaign, reward=pastry, rule="fallback")
    services.campaign_schedule(campaign=campaign, actor=actor, reason="Demo: ready", now=now)
    return campaign


def load(*, now=None) -> int:
    """Create the demo segments and campaigns; returns how many campaigns it created (0 when
    they are there already)."""
    if Campaign.objects.filter(name=FINISHED).exists():
        return 0
    now = now or timezone.now()
    actor = get_user_model().objects.filter(username="marketing").first()
    for name, description, definition in SEGMENTS:
        Segment.objects.get_or_create(
            name=name, defaults={"description": description, "definition": definition}
        )
    campaigns = [
        _finished_newsletter(actor=actor, now=now),
        _running_win_back(actor=actor, now=now),
        _scheduled_coffee_offer(actor=actor, now=now),
    ]
    return len(campaigns)
