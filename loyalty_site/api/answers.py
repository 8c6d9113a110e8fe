"""The body of a member answer and of a redemption answer, built in one place.

Every endpoint that answers with a member (enrol, profile, card lookup) or a redemption (redeem,
reserve, confirm, cancel) renders it from these, so a channel sees the same shape wherever it
meets one. The serializers pick the fields each answer documents.
"""

import functools
import uuid

from django.db import connection

from campaigns.tiers import tier_progress
from ledger import selectors as ledger_selectors
from ledger.models import Account
from loyalty_site.models import Channel
from members import selectors as member_selectors
from members.models import Card, Consent, Member
from members.rows import Rows
from rewards.models import Redemption, VoucherCode

_members = Rows(Member)


@functools.cache
def _answer_statement(where: str) -> str:
    return f"""
        SELECT {_members.columns("m")}, a.balance, a.pending, a.held
        FROM {Member._meta.db_table} m LEFT JOIN {Account._meta.db_table} a
            ON a.member_id = m.id
        WHERE {where} AND m.status <> %s
    """


def member_answer_member(*, pk: int | None = None, public_id: uuid.UUID | None = None):
    """The member (by id or public id, never an erased one) with what `member_answer` reads of
    its account, in one hand-written statement; None when there is none.

    The channel API's most frequent read (GET members/{id}/, the card lookup): built by the
    ORM, compiling its SQL cost more CPU than the database spent answering it; read through
    `Model.objects.raw()`, working out its columns did (see members.rows).
    """
    if public_id is not None:
        field = Member._meta.get_field("public_id")
        where, value = "m.public_id = %s", field.get_db_prep_value(public_id, connection)
    else:
        where, value = "m.id = %s", pk
    with connection.cursor() as cursor:
        cursor.execute(_answer_statement(where), [value, Member.Status.ERASED])
        row = cursor.fetchone()
    if row is None:
        return None
    member = _members.instance(row)
    member.answer_balance, member.answer_pending, member.answer_held = row[-3:]
    return member


def _cards(member_id: int) -> list[dict]:
    # The newest first: the one an enrolment has just issued (MemberEnrolledSerializer).
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT number, status FROM {Card._meta.db_table} WHERE member_id = %s "
            "ORDER BY issued_at DESC, id DESC",
            [member_id],
        )
        return [{"number": number, "status": status} for number, status in cursor.fetchall()]


def _contact_shown(member: Member, channel: Channel | None) -> bool:
    # A partner sees contact details only with the member's consent to sharing with partners.
    if channel is None or channel.kind != Channel.Kind.PARTNER:
        return True
    return member_selectors.consent_granted(member=member, purpose=Consent.Purpose.PARTNER_SHARING)


def member_answer(member: Member, *, channel: Channel | None = None) -> dict:
    """A member as the API shows it to `channel`; `member` comes from `member_answer_member`.
    A partner without the member's consent gets no e-mail address."""
    balance = member.answer_balance or 0  # no account yet: nothing earned
    held = member.answer_held or 0
    progress = tier_progress(member=member)
    cards = _cards(member.pk)
    return {
        "public_id": member.public_id,
        "email": member.email if _contact_shown(member, channel) else "",
        "first_name": member.first_name,
        "last_name": member.last_name,
        "external_id": member.external_id,
        "status": member.status,
        "balance": balance,
        "available": balance - held,
        "pending_points": member.answer_pending or 0,
        "tier": progress["tier"],
        "points_to_next_tier": progress["points_to_next_tier"],
        "cards": cards,
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
