"""Referral codes and the reward both parties get at the referred member's first purchase."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns.errors import (
    DuplicateEvent,
    EngagementLimitReached,
    InvalidReferral,
)
from campaigns.models import (
    AbuseRule,
    EngagementKind,
    Referral,
    ReferralCode,
)
from campaigns.services.engagement import event_record
from ledger.models import Purchase
from loyalty_site.errors import Conflict
from members import services as member_services
from members.models import Member

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@transaction.atomic
def referral_code_for(*, member: Member) -> ReferralCode:
    existing = ReferralCode.objects.filter(member=member).first()
    if existing:
        return existing
    for _attempt in range(5):
        code = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(member=member, code=code)
        except IntegrityError:
            found = ReferralCode.objects.filter(member=member).first()
            if found:
                return found
    raise Conflict(code="referral_code_exhausted")


@transaction.atomic
def member_enrol_referred(*, referral_code: str = "", **enrolment) -> Member:
    """Enrol a member (``members.services.member_enrol``'s arguments) and, with a referral code,
    register who referred them: both or neither."""
    member = member_services.member_enrol(**enrolment)
    if referral_code:
        referral_register(referred=member, code=referral_code)
    return member


@transaction.atomic
def referral_register(*, referred: Member, code: str) -> Referral:
    owner = ReferralCode.objects.filter(code=code.strip().upper()).select_related("member").first()
    if owner is None or owner.member_id == referred.pk:
        raise InvalidReferral()
    if Purchase.objects.filter(member=referred).exists():
        raise InvalidReferral(_("Only members who have not bought yet can be referred."))
    try:
        with transaction.atomic():
            return Referral.objects.create(referrer=owner.member, referred=referred)
    except IntegrityError:
        raise InvalidReferral(_("This member was already referred.")) from None


def _referral_kind() -> EngagementKind:
    kind, _created = EngagementKind.objects.get_or_create(
        code="referral",
        defaults={"name": gettext("Referral"), "points": settings.LOYALTY_REFERRAL_POINTS},
    )
    return kind


def referral_reward(*, referred: Member, purchase: Purchase) -> list[dict]:
    """Reward both parties once, when the referred member's first purchase lands.

    The conditional UPDATE claims the referral; a concurrent first purchase finds it claimed.
    """
    referral = Referral.objects.filter(referred=referred, rewarded_at__isnull=True).first()
    if referral is None:
        return []
    claimed = Referral.objects.filter(pk=referral.pk, rewarded_at__isnull=True).update(
        rewarded_at=timezone.now(), purchase=purchase
    )
    if not claimed:
        return []
    kind = _referral_kind()
    referrer_review = False
    for rule in AbuseRule.objects.filter(active=True, kind=AbuseRule.Kind.REFERRALS):
        recent = Referral.objects.filter(
            referrer_id=referral.referrer_id,
            rewarded_at__gt=timezone.now() - timedelta(days=1),
        ).count()
        if recent > rule.threshold:
            referrer_review = True
    reference = f"referral:{referral.pk}"
    extras = []
    for party, review in ((referral.referrer, referrer_review), (referred, False)):
        try:
            event = event_record(member=party, kind=kind, reference=reference, force_review=review)
        except (EngagementLimitReached, DuplicateEvent):
            continue
        extras.append({"rule": kind.name, "member": party.pk, "points": event.points})
    return extras
