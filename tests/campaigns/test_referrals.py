"""Referrals: codes and the reward of both parties (campaigns/services/referrals.py)."""

import threading

import pytest
from django.db import connection

from campaigns.models import (
    EngagementEvent,
    Referral,
)
from campaigns.services import (
    referral_code_for,
    referral_register,
)
from loyalty_site.errors import DomainError
from tests.campaigns.factories import (
    EngagementKindFactory,
)
from tests.campaigns.purchasing import balance, buy
from tests.factories import MemberFactory


@pytest.mark.django_db
def test_referral_rewards_both_parties_once_on_the_first_purchase(settings):
    settings.LOYALTY_REFERRAL_POINTS = 250
    referrer, newcomer = MemberFactory(), MemberFactory()
    code = referral_code_for(member=referrer)
    assert referral_code_for(member=referrer) == code
    referral_register(referred=newcomer, code=code.code.lower())
    buy(newcomer, "N1")
    buy(newcomer, "N2")
    assert balance(referrer) == 250
    assert balance(newcomer) == 250
    assert Referral.objects.get().rewarded_at is not None


@pytest.mark.django_db
def test_referral_codes_cannot_be_misused():
    member = MemberFactory()
    code = referral_code_for(member=member)
    with pytest.raises(DomainError):
        referral_register(referred=member, code=code.code)
    with pytest.raises(DomainError):
        referral_register(referred=MemberFactory(), code="UNKNOWN")
    newcomer = MemberFactory()
    referral_register(referred=newcomer, code=code.code)
    with pytest.raises(DomainError):
        referral_register(referred=newcomer, code=referral_code_for(member=MemberFactory()).code)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_purchases_reward_the_referral_once():
    EngagementKindFactory(code="referral", points=100)
    referrer, newcomer = MemberFactory(), MemberFactory()
    referral_register(referred=newcomer, code=referral_code_for(member=referrer).code)
    barrier = threading.Barrier(4)
    errors = []

    def worker(i):
        try:
            barrier.wait()
            buy(newcomer, f"P{i}")
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert balance(referrer) == 100
    assert balance(newcomer) == 100
    assert EngagementEvent.objects.filter(kind__code="referral").count() == 2
