"""Building an active message campaign for the sends tests (the lifecycle's transitions are
another part's: these set the audience and the status directly)."""

import itertools

from django.utils import timezone

from campaigns.models import Campaign, MessageTemplate
from campaigns.services import segment_snapshot_take
from members.models import Consent
from members.services import consent_grant
from tests.factories import MemberFactory

_phones = itertools.count(1)

PURPOSE = {"email": Consent.Purpose.MARKETING_EMAIL, "sms": Consent.Purpose.SMS, "push": "push"}


def member_with(*channels, phone=True, **fields):
    """An active member with a phone number and consent for each of `channels`."""
    if phone:
        fields.setdefault("phone", f"+316{next(_phones):08d}")
    member = MemberFactory(**fields)
    for channel in channels:
        consent_grant(member=member, purpose=PURPOSE[channel], channel="app")
    return member


def message_campaign(
    *,
    channels=("sms",),
    control=0,
    capped=True,
    name="Spring",
    body="Hello {{ first_name }}, you have {{ balance }} points.",
):
    """An active message campaign over every active member (frozen now), a template per
    channel in English."""
    snapshot = segment_snapshot_take(definition={"all": []})
    campaign = Campaign.objects.create(
        name=name,
        kind=Campaign.Kind.MESSAGE,
        status=Campaign.Status.ACTIVE,
        starts_at=timezone.now(),
        control_basis_points=control,
        frequency_capped=capped,
        audience=snapshot,
    )
    for channel in channels:
        MessageTemplate.objects.create(
            campaign=campaign, channel=channel, language="en", subject="News", body=body
        )
    return campaign
