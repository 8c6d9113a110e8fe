"""What the engagement, referral and challenge tests share: a purchase at a till, a balance."""

from datetime import UTC, datetime
from decimal import Decimal

from campaigns.services import purchase_record
from ledger.models import Account

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def balance(member):
    account = Account.objects.filter(member=member).first()
    return account.balance if account else 0


def buy(member, external_id, amount="10.00", at=T0, lines=()):
    return purchase_record(
        member=member, channel="pos", external_id=external_id, amount=Decimal(amount),
        currency="EUR", occurred_at=at, lines=lines,
    )  # fmt: skip
