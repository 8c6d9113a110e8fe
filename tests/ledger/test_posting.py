import pytest

from ledger.models import Account
from ledger.services.posting import account_for
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_an_account_is_created_on_first_use_and_reused():
    member = MemberFactory()
    assert not Account.objects.filter(member=member).exists()
    account = account_for(member)
    assert (account.balance, account.pending, account.held, account.available) == (0, 0, 0, 0)
    assert account_for(member).pk == account.pk
    assert Account.objects.filter(member=member).count() == 1
