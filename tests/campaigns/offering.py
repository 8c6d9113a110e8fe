"""What the offer and results tests share: an active campaign built by hand (the lifecycle's
transitions are another part), members put in or out of its control group, a purchase."""

from datetime import timedelta
from decimal import Decimal

from campaigns import control
from campaigns.models import Campaign
from campaigns.services import purchase_record, segment_snapshot_take
from tests.campaigns.purchasing import T0


def active_campaign(
    *,
    kind=Campaign.Kind.OFFER,
    definition=None,
    control_basis_points=0,
    starts_at=T0 - timedelta(days=1),
    ends_at=None,
    status=Campaign.Status.ACTIVE,
    salt=None,
):
    if ends_at is None:
        # A month after it starts: a campaign started at the test's own time (now) still runs.
        ends_at = starts_at + timedelta(days=31)
    audience = segment_snapshot_take(
        definition=definition or {"all": []}, now=starts_at, without_holdout=True
    )
    extra = {"salt": salt} if salt is not None else {}
    return Campaign.objects.create(
        name=f"Campaign {audience.pk}",
        kind=kind,
        status=status,
        starts_at=starts_at,
        ends_at=ends_at,
        control_basis_points=control_basis_points,
        audience=audience,
        **extra,
    )


def in_control(campaign, member) -> bool:
    return control.bucket(member.pk, campaign.salt) < campaign.control_basis_points


def salt_splitting(treated, held_out, share=5000) -> int:
    """A salt that puts every member of `held_out` in the control group and none of `treated`."""
    for salt in range(1, 100_000):
        if all(control.bucket(m.pk, salt) < share for m in held_out) and all(
            control.bucket(m.pk, salt) >= share for m in treated
        ):
            return salt
    raise AssertionError("no salt splits these members")


def buy(member, external_id, *, at, lines=(), amount=None, channel="pos"):
    total = amount if amount is not None else sum(Decimal(str(line["amount"])) for line in lines)
    return purchase_record(
        member=member, channel=channel, external_id=external_id, amount=Decimal(str(total)),
        currency="EUR", occurred_at=at, lines=list(lines),
    )  # fmt: skip
