"""The body of a member answer and of a redemption answer, built in one place.

Every endpoint that answers with a member (enrol, profile, card lookup) or a redemption (redeem,
reserve, confirm, cancel) renders it from these, so a channel sees the same shape wherever it
meets one. The serializers pick the fields each answer documents.
"""

from django.db.models import Prefetch, QuerySet

from campaigns.tiers import tier_progress
from ledger import selectors as ledger_selectors
from loyalty_site.models import Channel
from members import selectors as member_selectors
from members.models import Card, Consent, Member
from rewards.models import Redemption, VoucherCode


def member_answer_queryset() -> QuerySet[Member]:
    """Members with what `member_answer` reads, in one query plus one for the cards."""
    return Member.objects.select_related("tier", "account").prefetch_related(
        Prefetch("cards", queryset=Card.objects.order_by("-issued_at", "-pk"))
    )


def _contact_shown(member: Member, channel: Channel | None) -> bool:
    # A partner sees contact details only with the member's consent to sharing with partners.
    if channel is None or channel.kind != Channel.Kind.PARTNER:
        return True
    return member_selectors.consent_granted(member=member, purpose=Consent.Purpose.PARTNER_SHARING)


def member_answer(member: Member, *, channel: Channel | None = None) -> dict:
    """A member as the API shows it to `channel`; `member` should come from
    `member_answer_queryset`. A partner without the member's consent gets no e-mail address."""
    try:
        account = member.account
        balance, pending, held = account.balance, account.pending, account.held
    except Member.account.RelatedObjectDoesNotExist:
        balance = pending = held = 0
    progress = tier_progress(member=member)
    cards = [{"number": c.number, "status": c.status} for c in member.cards.all()]
    return {
        "public_id": member.public_id,
        "email": member.email if _contact_shown(member, channel) else "",
        "first_name": member.first_name,
        "last_name": member.last_name,
        "external_id": member.external_id,
        "status": member.status,
        "balance": balance,
        "available": balance - held,
        "pending_points": pending,
        "tier": progress["tier"],
        "points_to_next_tier": progress["points_to_next_tier"],
        "cards": cards,
        # The newest card: the one an enrolment has just issued (MemberEnrolledSerializer).
        "card_number": cards[0]["number"] if cards else None,
    }


def redemption_answer(redemption: Redemption) -> dict:
    code = VoucherCode.objects.filter(redemption=redemption).values_list("code", flat=True).first()
    summary = ledger_selectors.balance_summary(member=redemption.member)
    return {
        "id": redemption.pk,
        "member": redemption.member.public_id,
        "reward": redemption.reward_id,
        "status": redemption.status,
        "points": redemption.points,
        "code": code,
        "balance": summary["balance"],
        "available": summary["available"],
    }
