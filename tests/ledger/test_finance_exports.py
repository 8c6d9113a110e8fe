"""manage.py liability_report and the exports: the page's totals, streamed per member."""

import csv
import io
import json
import tracemalloc
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from openpyxl import load_workbook

from ledger import services
from ledger.finance import exports, liability, per_member
from ledger.models import Account, Entry
from members.models import Card
from tests.factories import MemberFactory
from tests.ledger.finance_histories import START, history_run

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command("liability_report", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def ledger_with_history(settings):
    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    return history_run(21, steps=80, members=5)


def test_the_command_totals_equal_the_report(ledger_with_history):
    as_of = "2025-03-01"
    report = liability.liability_at(as_of=liability_moment(as_of))
    summary = dict(csv.reader(io.StringIO(run("--as-of", as_of))))
    assert int(summary["outstanding_points"]) == report.points
    months = list(csv.DictReader(io.StringIO(run("--as-of", as_of, "--by", "expiry_month"))))
    assert sum(int(row["points"]) for row in months) == report.points
    tiers = list(csv.DictReader(io.StringIO(run("--as-of", as_of, "--by", "tier"))))
    assert sum(int(row["points"]) for row in tiers) == report.points
    data = json.loads(run("--as-of", as_of, "--format", "json"))
    assert data["summary"]["outstanding_points"] == report.points
    members = list(csv.DictReader(io.StringIO(run("--as-of", as_of, "--by", "member"))))
    assert sum(int(row["outstanding_points"]) for row in members) == report.points
    assert sum(int(row["debt_points"]) for row in members) == report.debt_points


def liability_moment(text):
    from ledger.finance.moments import as_of_parse

    return as_of_parse(text)


def test_today_the_per_member_export_is_the_accounts_positive_balances(ledger_with_history):
    members = list(csv.DictReader(io.StringIO(run("--by", "member"))))
    balances = {
        str(public_id): balance
        for public_id, balance in Account.objects.values_list("member__public_id", "balance")
        if balance
    }
    assert {row["member_id"]: int(row["outstanding_points"]) for row in members} == {
        member: max(balance, 0) for member, balance in balances.items()
    }
    for row in members:
        expiring = sum(int(v) for k, v in row.items() if k.startswith("expiring_"))
        assert expiring == int(row["outstanding_points"])
        if int(row["debt_points"]):
            assert int(row["outstanding_points"]) == 0


def test_xlsx_files(ledger_with_history, tmp_path):
    path = tmp_path / "members.xlsx"
    run("--by", "member", "--format", "xlsx", "--output", str(path))
    rows = list(load_workbook(path).active.iter_rows(values_only=True))
    assert rows[0][:4] == ("member_id", "card", "tier", "outstanding_points")
    assert sum(row[3] for row in rows[1:]) == liability.points_outstanding(
        as_of=ledger_with_history + timedelta(days=1)
    )
    summary = tmp_path / "summary.xlsx"
    run("--by", "tier", "--format", "xlsx", "--output", str(summary))
    assert load_workbook(summary).active.cell(1, 1).value == "tier"


def test_bad_arguments_are_refused():
    with pytest.raises(CommandError, match="as-of"):
        run("--as-of", "yesterday")
    with pytest.raises(CommandError, match="xlsx"):
        run("--format", "xlsx")


def test_the_card_column_names_an_active_card():
    member = MemberFactory()
    Card.objects.create(member=member, number="6000000000000002")
    services.points_earn(member=member, points=10, at=START)
    rows = list(exports.member_table(as_of=START + timedelta(days=1)))
    assert rows[1][:4] == [str(member.public_id), "6000000000000002", "", 10]


def test_the_per_member_export_streams_in_bounded_memory(settings, django_assert_max_num_queries):
    """Memory and queries grow with the chunk, not with the members: 3 chunks of 50."""
    members = [MemberFactory() for _ in range(150)]
    for member in members:
        services.points_earn(member=member, points=5, at=START)
    tracemalloc.start()
    try:
        with django_assert_max_num_queries(3 * 4 + 4):
            rows = per_member.member_rows(as_of=START + timedelta(days=1), chunk=50)
            first = next(rows)
            _current, peak_first = tracemalloc.get_traced_memory()
            count = 1 + sum(1 for _ in rows)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.outstanding_points == 5 and count == 150
    assert peak < peak_first * 2


def test_the_per_member_expiry_months_are_the_reports_at_month_and_dst_edges(settings):
    """Months in the programme's zone (Amsterdam): 22:30 UTC on 31 March is 00:30 on 1 April
    (summer time), 23:30 UTC on 31 October is 00:30 on 1 November (winter time); a lot that
    never expires is "never". Each member's columns add up to the report's months."""
    utc = UTC
    member, other = MemberFactory(), MemberFactory()
    expiries = {
        datetime(2027, 3, 31, 22, 30, tzinfo=utc): 7,  # April in Amsterdam
        datetime(2027, 3, 31, 21, 30, tzinfo=utc): 11,  # still 31 March (23:30)
        datetime(2027, 10, 31, 23, 30, tzinfo=utc): 13,  # November
        datetime(2027, 10, 31, 22, 30, tzinfo=utc): 17,  # still 31 October (23:30)
    }
    for expires_at, points in expiries.items():
        services.points_earn(member=member, points=points, at=START, expires_at=expires_at)
    settings.LOYALTY_EXPIRY_POLICY = "none"
    services.points_earn(member=other, points=3, at=START)
    as_of = START + timedelta(days=1)
    rows = {row.member: row.by_month for row in per_member.member_rows(as_of=as_of)}
    assert rows[str(member.public_id)] == {
        date(2027, 3, 1): 11,
        date(2027, 4, 1): 7,
        date(2027, 10, 1): 17,
        date(2027, 11, 1): 13,
    }
    assert rows[str(other.public_id)] == {None: 3}
    report = liability.by_expiry_month(as_of=as_of)
    assert report == {date(2027, 3, 1): 11, date(2027, 4, 1): 7, date(2027, 10, 1): 17,
                      date(2027, 11, 1): 13, None: 3}  # fmt: skip
    header, *lines = exports.member_table(as_of=as_of)
    assert header[6:] == [
        "expiring_2027-03",
        "expiring_2027-04",
        "expiring_2027-10",
        "expiring_2027-11",
        "expiring_never",
    ]
    assert sorted(line[6:] for line in lines) == [[0, 0, 0, 0, 3], [11, 7, 17, 13, 0]]


def test_the_per_member_export_reads_a_past_date_from_the_consumptions():
    """Points spent after ``as_of`` still count as held then, in their lot's expiry month."""
    member = MemberFactory()
    expires_at = datetime(2027, 6, 15, 12, tzinfo=UTC)
    services.points_earn(member=member, points=40, at=START, expires_at=expires_at)
    services.points_redeem(member=member, points=25, at=START + timedelta(days=3))
    before, after = START + timedelta(days=1), START + timedelta(days=5)
    [then] = per_member.member_rows(as_of=before)
    [now] = per_member.member_rows(as_of=after)
    assert (then.outstanding_points, then.by_month) == (40, {date(2027, 6, 1): 40})
    assert (now.outstanding_points, now.by_month) == (15, {date(2027, 6, 1): 15})


@pytest.mark.parametrize("seed", range(3))
def test_the_per_member_tiers_are_the_reports_tiers_at_every_moment(seed, settings):
    """The export looks each chunk's tiers up one member at a time (``TIER_THEN_SQL``), the
    report joins them for every account at once (``BY_TIER_SQL``): both are ``tier_at``'s rule,
    on random histories with tier changes before and after the moment."""
    from members.models import Member, Tier
    from tests.ledger.finance_histories import tier_at

    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    end = history_run(seed)
    names = dict(Tier.objects.values_list("pk", "name"))
    members = {str(member.public_id): member for member in Member.objects.all()}
    moments = sorted(set(Entry.objects.values_list("created_at", flat=True)))
    for moment in [*moments[:: max(len(moments) // 12, 1)], end]:
        rows = list(per_member.member_rows(as_of=moment))
        for row in rows:
            assert row.tier == names.get(tier_at(members[row.member], moment), ""), moment
        summed = {}
        for row in rows:
            if row.outstanding_points:
                tier = next((pk for pk, name in names.items() if name == row.tier), None)
                summed[tier] = summed.get(tier, 0) + row.outstanding_points
        assert summed == liability.by_tier(as_of=moment), moment
