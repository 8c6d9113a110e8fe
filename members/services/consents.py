"""Consents per purpose, granted or withdrawn, with when, how and which wording."""

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from loyalty_site.errors import DomainError
from members.errors import (
    MemberErased,
)
from members.models import (
    Consent,
    Member,
)
from members.services.audit import audit_record


def _consent_record(
    *,
    member: Member,
    purpose: str,
    action: str,
    channel: str,
    wording_version: str | None,
    actor,
    at: datetime | None,
    reason: str = "",
) -> Consent:
    if purpose not in Consent.Purpose.values:
        raise DomainError(code="invalid_purpose", fields={"purpose": f"unknown: {purpose}"})
    if action == Consent.Action.GRANT and member.status == Member.Status.ERASED:
        raise MemberErased()
    consent = Consent.objects.create(
        member=member,
        purpose=purpose,
        action=action,
        channel=channel,
        wording_version=(
            wording_version
            if wording_version is not None
            else settings.LOYALTY_CONSENT_WORDING_VERSION
        ),
        actor=actor,
        at=at or timezone.now(),
    )
    if actor is not None:
        audit_record(
            actor=actor,
            action=f"consent_{action}",
            member=member,
            reason=reason,
            details={"purpose": purpose, "consent_id": consent.pk},
        )
    return consent


@transaction.atomic
def consent_grant(
    *,
    member: Member,
    purpose: str,
    channel: str = "",
    wording_version: str | None = None,
    actor=None,
    at: datetime | None = None,
    reason: str = "",
) -> Consent:
    return _consent_record(
        member=member,
        purpose=purpose,
        action=Consent.Action.GRANT,
        channel=channel,
        wording_version=wording_version,
        actor=actor,
        at=at,
        reason=reason,
    )


@transaction.atomic
def consent_withdraw(
    *,
    member: Member,
    purpose: str,
    channel: str = "",
    wording_version: str | None = None,
    actor=None,
    at: datetime | None = None,
    reason: str = "",
) -> Consent:
    return _consent_record(
        member=member,
        purpose=purpose,
        action=Consent.Action.WITHDRAW,
        channel=channel,
        wording_version=wording_version,
        actor=actor,
        at=at,
        reason=reason,
    )
