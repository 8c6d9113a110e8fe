"""Cards: issue, block, replace."""

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty_site.errors import Conflict
from members import cardnumbers
from members.errors import (
    CardNotActive,
    MemberErased,
)
from members.models import (
    Card,
    Member,
)
from members.services.audit import audit_record


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
