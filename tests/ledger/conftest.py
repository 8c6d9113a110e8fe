import pytest

from ledger.selectors import account_mismatches, accounts_with_totals


@pytest.fixture
def assert_reconciled():
    """Check every account: balance == entries == lots (when >= 0), held and pending in step."""

    def check():
        problems = {a.pk: account_mismatches(a) for a in accounts_with_totals()}
        problems = {pk: p for pk, p in problems.items() if p}
        assert problems == {}

    return check
