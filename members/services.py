from django.db import IntegrityError, transaction

from loyalty_site.errors import Conflict
from members import cardnumbers
from members.models import Card, Member


@transaction.atomic
def card_issue(*, member: Member) -> Card:
    # Random numbers can collide; retry inside a savepoint rather than check-then-insert.
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Card.objects.create(member=member, number=cardnumbers.generate())
        except IntegrityError:
            continue
    raise Conflict(code="card_number_exhausted")


@transaction.atomic
def member_enrol(
    *,
    email: str,
    first_name: str = "",
    last_name: str = "",
    external_id: str = "",
    channel: str = "",
) -> Member:
    email = email.strip()
    if Member.objects.filter(email__iexact=email).exists():
        raise Conflict(code="email_taken", fields={"email": "already enrolled"})
    member = Member.objects.create(
        email=email,
        first_name=first_name,
        last_name=last_name,
        external_id=external_id,
        enrolled_channel=channel,
    )
    card_issue(member=member)
    return member
