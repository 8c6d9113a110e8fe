"""Ledger factories for the ledger tests (and any app above the ledger)."""

import datetime

import factory

from ledger.models import Purchase
from tests.factories import MemberFactory


class PurchaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Purchase

    member = factory.SubFactory(MemberFactory)
    channel = "pos"
    external_id = factory.Sequence(lambda n: f"receipt-{n}")
    amount = "25.00"
    currency = "EUR"
    occurred_at = factory.Faker("date_time_this_year", tzinfo=datetime.UTC)
