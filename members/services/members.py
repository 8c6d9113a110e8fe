"""Members: enrol, update, scrub their personal fields."""

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import DomainError
from members.errors import (
    EmailTaken,
    ExternalIdTaken,
    MemberErased,
    PhoneTaken,
)
from members.events import event_emit
from members.models import (
    Card,
    Consent,
    ErasedIdentity,
    Member,
    TierHistory,
)
from members.normalise import email_normalise, phone_normalise
from members.selectors import (
    IDENTITY_FIELDS,
    consent_granted,
    identity_digest,
    tier_entry,
)
from members.services.audit import audit_record
from members.services.cards import card_issue
from members.services.consents import consent_grant

# The member fields member_update may change, and which of them are personal data that
# member_scrub replaces.
UPDATABLE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "birth_date",
    "locale",
    "status",
    "external_id",
    "profile",
)
ERASED_PLACEHOLDERS = {
    "first_name": "",
    "last_name": "",
    "email": "",
    "phone": "",
    "birth_date": None,
    "locale": "",
    "external_id": "",
    "profile": {},
    "enrolled_channel": "",
}


def _uniqueness_error(*, email: str, phone: str, external_id: str, exclude_pk=None):
    """Name the unique field that clashes, or None."""
    others = Member.objects.all()
    if exclude_pk is not None:
        others = others.exclude(pk=exclude_pk)
    if email and others.filter(email__iexact=email).exists():
        return EmailTaken(fields={"email": EmailTaken.default_detail})
    if phone and others.filter(phone=phone).exists():
        return PhoneTaken(fields={"phone": PhoneTaken.default_detail})
    if external_id and others.filter(external_id=external_id).exists():
        return ExternalIdTaken(fields={"external_id": ExternalIdTaken.default_detail})
    return None


def _save_unique(member: Member, **save_kwargs) -> None:
    """Save, turning a unique-constraint race into the matching Conflict.

    The pre-check gives a friendly error in the common case; two enrolments racing with the
    same e-mail both pass it, and the database's unique index decides: the loser lands here.
    """
    error = _uniqueness_error(
        email=member.email,
        phone=str(member.phone or ""),
        external_id=member.external_id,
        exclude_pk=member.pk,
    )
    if error:
        raise error
    try:
        with transaction.atomic():
            member.save(**save_kwargs)
    except IntegrityError:
        error = _uniqueness_error(
            email=member.email,
            phone=str(member.phone or ""),
            external_id=member.external_id,
            exclude_pk=member.pk,
        )
        # The clashing row may not be visible yet (its transaction has not committed); the
        # unique index only tells us "taken", and e-mail is by far the likeliest.
        raise error or EmailTaken(fields={"email": EmailTaken.default_detail}) from None


@transaction.atomic
def member_enrol(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    external_id: str = "",
    channel: str = "",
    phone: str = "",
    birth_date: date | None = None,
    locale: str = "",
    profile: Mapping | None = None,
    consents: Iterable[str] = (),
    wording_version: str | None = None,
    card_number: str | None = None,
    enrolled_at: datetime | None = None,
    actor=None,
) -> Member:
    """Enrol a member with one card; ``consents`` lists the purposes granted at sign-up.

    The member starts in the entry tier, the highest one that needs no points, if there is one.
    """
    enrolled_at = enrolled_at or timezone.now()
    # The member starts in the tier that needs no points, as the nightly recalculation would
    # decide.
    entry_tier = tier_entry()
    member = Member(
        tier=entry_tier,
        tier_since=enrolled_at if entry_tier is not None else None,
        email=email_normalise(email),
        phone=phone_normalise(phone),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        external_id=external_id.strip(),
        birth_date=birth_date,
        locale=locale,
        profile=dict(profile or {}),
        enrolled_channel=channel,
        enrolled_at=enrolled_at,
    )
    _save_unique(member)
    if entry_tier is not None:
        TierHistory.objects.create(
            member=member, to_tier=entry_tier, reason=TierHistory.Reason.ENROL, at=enrolled_at
        )
    card = card_issue(member=member, number=card_number)
    for purpose in consents:
        consent_grant(
            member=member,
            purpose=purpose,
            channel=channel,
            wording_version=wording_version,
            at=member.enrolled_at,
        )
    if actor is not None:
        audit_record(actor=actor, action="member_enrol", member=member)
    event_emit(
        event_type="member.enrolled",
        data={
            "member": member.public_id,
            "card_number": card.number,
            "tier": entry_tier.name if entry_tier is not None else None,
        },
        channel=channel,
    )
    return member


@transaction.atomic
def member_update(*, member: Member, actor=None, reason: str = "", **changes) -> Member:
    """Change a member's fields; e-mail and phone are normalised and stay unique."""
    unknown = set(changes) - set(UPDATABLE_FIELDS)
    if unknown:
        raise DomainError(
            code="invalid_field", fields=dict.fromkeys(unknown, _("This field cannot be changed."))
        )
    locked = Member.objects.select_for_update().get(pk=member.pk)
    if locked.status == Member.Status.ERASED:
        raise MemberErased()
    if "email" in changes:
        changes["email"] = email_normalise(changes["email"])
    if "phone" in changes:
        changes["phone"] = phone_normalise(str(changes["phone"] or ""))
    if changes.get("status") == Member.Status.ERASED:
        raise DomainError(code="use_erase", fields={"status": _("Erase the member instead.")})
    changed = []
    for name, value in changes.items():
        if value is None and name != "birth_date":
            value = {} if name == "profile" else ""
        current = getattr(locked, name)
        if name == "phone":
            current = str(current or "")
        if current != value:
            setattr(locked, name, value)
            changed.append(name)
    if changed:
        _save_unique(locked)
        if actor is not None:
            audit_record(
                actor=actor,
                action="member_update",
                member=locked,
                reason=reason,
                details={"fields": sorted(changed)},
            )
    return locked


@transaction.atomic
def member_scrub(*, member: Member, actor=None, reason: str = "") -> Member:
    """Replace the member's personal fields by placeholders that cannot be turned back,
    withdraw every consent and block the active cards. Ids, ledger links and history stay.

    Only this app's own fields: other apps' personal data is the caller's job
    (loyalty_site.privacy.member_erase composes them).
    """
    locked = Member.objects.select_for_update().get(pk=member.pk)
    now = timezone.now()
    digests = {identity_digest(kind, getattr(locked, kind)) for kind in IDENTITY_FIELDS} - {None}
    ErasedIdentity.objects.bulk_create(
        [ErasedIdentity(digest=digest, erased_at=now) for digest in digests],
        ignore_conflicts=True,
    )
    for name, value in ERASED_PLACEHOLDERS.items():
        setattr(locked, name, value)
    locked.status = Member.Status.ERASED
    locked.save()
    for purpose in Consent.Purpose.values:
        if consent_granted(member=locked, purpose=purpose):
            Consent.objects.create(
                member=locked,
                purpose=purpose,
                action=Consent.Action.WITHDRAW,
                channel="erasure",
                wording_version="",
                actor=actor,
                at=now,
            )
    blocked = Card.objects.filter(member=locked, status=Card.Status.ACTIVE).update(
        status=Card.Status.BLOCKED, status_changed_at=now
    )
    audit_record(
        actor=actor,
        action="member_scrub",
        member=locked,
        reason=reason,
        details={"cards_blocked": blocked},
    )
    return locked
