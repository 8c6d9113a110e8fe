"""The read replica (members.replica): reports and exports read it, writes never go there.

The replica here is a second connection to the test database (what a ``TEST: {"MIRROR":
"default"}`` alias is): it sees committed rows only, so these tests commit (transactional_db),
and each one checks which connection ran which statement.
"""

from datetime import date

import pytest
from django.db import connections, router, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from ledger import services
from loyalty_site.models import DashboardDay
from members.models import Member
from members.replica import REPLICA, on_replica
from tests.factories import MemberFactory


@pytest.fixture(scope="module", autouse=True)
def _replica_alias(django_db_setup):
    # Added here, not in settings, so that only this module's tests have a replica; before the
    # tests' own database fixtures, which check that every alias they name exists.
    default = connections["default"].settings_dict
    connections.settings[REPLICA] = {**default, "TEST": {**default["TEST"], "MIRROR": "default"}}
    try:
        yield
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]


with_replica = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


@pytest.fixture
def replica():
    return connections[REPLICA]


def _tables(captured) -> str:
    return " ".join(query["sql"] for query in captured.captured_queries)


@with_replica
def test_reads_on_replica_go_there_and_writes_do_not(replica):
    MemberFactory(email="seen@example.nl")
    default = connections["default"]
    with (
        CaptureQueriesContext(replica) as on_r,
        CaptureQueriesContext(default) as on_d,
        on_replica(),
    ):
        assert Member.objects.filter(email="seen@example.nl").count() == 1
        MemberFactory(email="written@example.nl")
    assert "members_member" in _tables(on_r) and "INSERT" not in _tables(on_r)
    assert "INSERT" in _tables(on_d) and "COUNT" not in _tables(on_d)
    assert Member.objects.filter(email="written@example.nl").exists()


@with_replica
def test_a_transaction_reads_its_own_database(replica):
    with on_replica(), transaction.atomic():
        assert router.db_for_read(Member) == "default"
    with on_replica():
        assert router.db_for_read(Member) == REPLICA
    assert router.db_for_read(Member) == "default"


@pytest.mark.django_db
def test_without_a_replica_everything_reads_the_default_database(monkeypatch):
    monkeypatch.delitem(connections.settings, REPLICA)
    with on_replica():
        assert router.db_for_read(Member) == "default"
        assert router.db_for_write(Member) == "default"


@with_replica
def test_the_finance_report_and_its_export_read_the_replica(replica, client, roles):
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name="Finance"))
    services.points_earn(member=MemberFactory(), points=50)
    client.force_login(user)
    with (
        CaptureQueriesContext(replica) as on_r,
        CaptureQueriesContext(connections["default"]) as on_d,
    ):
        page = client.get(reverse("finance"))
        export = client.get(reverse("finance"), {"export": "summary", "format": "csv"})
    assert page.status_code == 200 and export.status_code == 200
    assert "ledger_lot" in _tables(on_r)
    assert "ledger_lot" not in _tables(on_d)


@with_replica
def test_the_dashboard_day_reads_the_replica_and_writes_the_default(replica):
    services.points_earn(member=MemberFactory(), points=50)
    from loyalty_site.dashboard.days import day_refresh, local_today

    today = local_today()
    with CaptureQueriesContext(replica) as on_r:
        day_refresh(day=today)
    assert "ledger_entry" in _tables(on_r) and "INSERT" not in _tables(on_r)
    assert DashboardDay.objects.filter(day=today).exists()
    assert isinstance(today, date)
