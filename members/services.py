"""Every write to members, cards, consents and a member's tier.

Staff changes (an ``actor`` is given) are recorded in the audit log with who, when, what and
why; channel changes are recorded on the rows themselves (channel, time).
"""

from collections.abc import Iterable, Mapping
from datetime import date, datetime

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import Conflict, DomainError
from members import cardnumbers
from members.errors import (
    CardNotActive,
    EmailTaken,
    ExternalIdTaken,
    MemberErased,
    PhoneTaken,
    ReasonRequired,
)
from members.events import Event, event_emit, events_emit
from members.models import (
    AuditEntry,
    Card,
    Consent,
    ErasedIdentity,
    Member,
    Tier,
    TierHistory,
)
from members.normalise import email_normalise, phone_normalise
from members.selectors import (
    IDENTITY_FIELDS,
    consent_granted,
    identity_digest,
    tier_entry,
    tiers_cached,
)

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


def audit_record(
    *,
    actor,
    action: str,
    member: Member | None = None,
    reason: str = "",
    details: dict | None = None,
) -> AuditEntry:
    """One line of the staff audit log. ``details`` must hold no personal values."""
    return AuditEntry.objects.create(
        actor=actor, action=action, member=member, reason=reason, details=details or {}
    )


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
def card_issue(*, member: Member, number: str | None = None, actor=None) -> Card:
    """A new active card. ``number`` is for imported legacy cards; otherwise one is generated."""
    if member.status == Member.Status.ERASED:
        raise MemberErased()
    if number is not None:
        try:
            with transaction.atomic():
                card = Card.objects.create(member=member, number=number)
        except IntegrityError:
            raise Conflict(
                code="card_number_taken", fields={"card_number": _("This card number is in use.")}
            ) from None
    else:
        # Random numbers can collide; retry inside a savepoint rather than check-then-insert.
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    card = Card.objects.create(member=member, number=cardnumbers.generate())
                break
            except IntegrityError:
                continue
        else:
            raise Conflict(code="card_number_exhausted")
    if actor is not None:
        audit_record(actor=actor, action="card_issue", member=member, details={"card_id": card.pk})
    return card


@transaction.atomic
def card_block(*, card: Card, actor=None, reason: str = "") -> Card:
    """Stop a card working in every channel (lost, stolen, misuse)."""
    card = Card.objects.select_for_update().get(pk=card.pk)
    if card.status != Card.Status.ACTIVE:
        raise CardNotActive()
    card.status = Card.Status.BLOCKED
    card.status_changed_at = timezone.now()
    card.save(update_fields=["status", "status_changed_at"])
    if actor is not None:
        audit_record(
            actor=actor,
            action="card_block",
            member=card.member,
            reason=reason,
            details={"card_id": card.pk},
        )
    return card


@transaction.atomic
def card_replace(*, card: Card, actor=None, reason: str = "") -> Card:
    """Issue a new card to the same member; the old one (active or blocked) stops working.

    The balance lives on the member's account, not on the card, so it follows without a move.
    """
    card = Card.objects.select_for_update().select_related("member").get(pk=card.pk)
    if card.status == Card.Status.REPLACED:
        raise CardNotActive(code="card_replaced")
    new_card = card_issue(member=card.member)
    card.status = Card.Status.REPLACED
    card.status_changed_at = timezone.now()
    card.replaced_by = new_card
    card.save(update_fields=["status", "status_changed_at", "replaced_by"])
    if actor is not None:
        audit_record(
            actor=actor,
            action="card_replace",
            member=card.member,
            reason=reason,
            details={"card_id": card.pk, "new_card_id": new_card.pk},
        )
    return new_card


def _consent_record(
    *,
    member: Member,
    purpose: str,
    action: str,
    channel: str,
    wording_version: str | None,
    actor,
    at: datetime | None,
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
) -> Consent:
    return _consent_record(
        member=member,
        purpose=purpose,
        action=Consent.Action.GRANT,
        channel=channel,
        wording_version=wording_version,
        actor=actor,
        at=at,
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
) -> Consent:
    return _consent_record(
        member=member,
        purpose=purpose,
        action=Consent.Action.WITHDRAW,
        channel=channel,
        wording_version=wording_version,
        actor=actor,
        at=at,
    )


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
def member_tier_set(
    *,
    member: Member,
    tier: Tier | None,
    reason: str = TierHistory.Reason.STAFF,
    actor=None,
    note: str = "",
    qualifying_points: int | None = None,
    at: datetime | None = None,
    channel: str = "",
) -> TierHistory | None:
    """Move a member to ``tier`` and record why; None when the member is there already.

    The one way a member's tier changes one at a time (staff, an earn, an event): it writes the
    tier history, the audit row (``actor`` None: the programme itself) and the ``tier.changed``
    event. The nightly recalculation moves members in bulk and writes the same three with
    ``tier_changes_record``.
    """
    if reason == TierHistory.Reason.STAFF and actor is not None and not note.strip():
        raise ReasonRequired(fields={"note": ReasonRequired.default_detail})
    locked = Member.objects.select_for_update().get(pk=member.pk)
    if locked.tier_id == (tier.pk if tier else None):
        if locked.tier_below_since is not None and reason != TierHistory.Reason.DOWNGRADE:
            locked.tier_below_since = None
            locked.save(update_fields=["tier_below_since"])
        return None
    at = at or timezone.now()
    history = TierHistory.objects.create(
        member=locked,
        from_tier_id=locked.tier_id,
        to_tier=tier,
        reason=reason,
        note=note,
        qualifying_points=qualifying_points,
        at=at,
        actor=actor,
    )
    locked.tier = tier
    locked.tier_since = at
    locked.tier_below_since = None
    locked.save(update_fields=["tier", "tier_since", "tier_below_since", "updated_at"])
    member.tier, member.tier_since, member.tier_below_since = tier, at, None
    tier_changes_record(histories=[history], channel=channel)
    return history


def tier_changes_record(*, histories: list[TierHistory], channel: str = "") -> None:
    """The audit rows and ``tier.changed`` events of tier changes whose history is written.

    Bulk: the nightly recalculation hands in every history row it inserted. Tier names come
    from the cached ladder, so this costs two statements however many members moved.
    """
    if not histories:
        return
    names = {tier.pk: tier.name for tier in tiers_cached()}
    public_ids = dict(
        Member.objects.filter(pk__in={h.member_id for h in histories}).values_list(
            "pk", "public_id"
        )
    )
    AuditEntry.objects.bulk_create(
        AuditEntry(
            actor=h.actor,
            action="member_tier_set",
            member_id=h.member_id,
            reason=h.note,
            at=h.at,
            details={
                "from_tier_id": h.from_tier_id,
                "to_tier_id": h.to_tier_id,
                "reason": h.reason,
            },
        )
        for h in histories
    )
    events_emit(
        events=[
            Event(
                type="tier.changed",
                data={
                    "member": public_ids[h.member_id],
                    "from": names.get(h.from_tier_id),
                    "to": names.get(h.to_tier_id),
                    "reason": h.reason,
                },
                channel=channel,
            )
            for h in histories
        ]
    )


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
