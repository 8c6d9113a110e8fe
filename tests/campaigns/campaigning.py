"""What the campaign tests share: a campaign set running, and a purchase at a till now."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, EarningRule
from campaigns.services import purchase_record
from tests.campaigns.factories import EarningRuleFactory


def draft(*, rules=({"bonus_points": 10},), days_ago=1, days=30, **fields) -> Campaign:
    """A draft earning campaign starting `days_ago` days ago, with bonus rules (kwargs)."""
    start = timezone.now() - timedelta(days=days_ago)
    fields.setdefault("control_basis_points", 0)
    campaign = Campaign.objects.create(
        name=fields.pop("name", "Double week"),
        kind=fields.pop("kind", Campaign.Kind.EARNING),
        starts_at=fields.pop("starts_at", start),
        ends_at=fields.pop("ends_at", start + timedelta(days=days)),
        **fields,
    )
    for spec in rules:
        spec = {"kind": EarningRule.Kind.BONUS, "name": "Campaign bonus", **spec}
        EarningRuleFactory(campaign=campaign, **spec)
    return campaign


def running(**kwargs) -> Campaign:
    """`draft`, scheduled and started at its start (its audience frozen then)."""
    campaign = draft(**kwargs)
    start = campaign.starts_at
    services.campaign_schedule(campaign=campaign, actor=None, now=start - timedelta(minutes=1))
    return services.campaign_activate(campaign=campaign, now=start)


def buy(member, amount="1.00", at=None, **kwargs):
    buy.n += 1
    return purchase_record(
        member=member,
        channel="pos",
        external_id=kwargs.pop("external_id", f"CP{buy.n}"),
        amount=Decimal(amount),
        currency="EUR",
        occurred_at=at,
        **kwargs,
    )


buy.n = 0


def campaign_points(result) -> int:
    return sum(r["points"] for r in result.rules if r["rule"] == "Campaign bonus")
