"""members.database.big_read: the settings of a big read last for its transaction only."""

import pytest
from django.db import connection

from members.database import big_read


def _shown() -> tuple[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('jit'), current_setting('plan_cache_mode')")
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True)
def test_a_big_read_plans_without_the_jit_and_per_execution_until_its_transaction_ends():
    if connection.vendor != "postgresql":
        pytest.skip("the JIT and the plan cache are PostgreSQL's")
    before = _shown()
    assert before[1] == "auto"  # the earn's statements keep their generic plans
    with big_read(connection):
        assert connection.in_atomic_block
        assert _shown() == ("off", "force_custom_plan")
    assert _shown() == before
