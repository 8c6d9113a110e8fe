"""The liability as of any moment: exact for past dates, equal to a recomputation from scratch."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from ledger import services
from ledger.finance import liability, moments
from ledger.finance.values import value_at
from ledger.models import (
    Account,
    Entry,
    Lot,
    LotConsumption,
    PendingCancellation,
    PendingEarn,
    PointValue,
)
from tests.factories import MemberFactory
from tests.ledger.finance_histories import START, history_run, pending_open, recompute

pytestmark = pytest.mark.django_db


def report(as_of):
    result = liability.liability_at(as_of=as_of)
    return {
        "points": result.points,
        "months": {month: row.points for month, row in result.by_expiry_month},
        "tiers": {(tier.pk if tier else None): row.points for tier, row in result.by_tier},
        "debt_members": result.members_in_debt,
    }


@pytest.mark.parametrize("seed", range(6))
def test_past_liability_equals_what_it_said_then_and_a_recomputation(seed, settings):
    settings.LOYALTY_EXPIRY_MONTHS = 2  # expiries inside the history
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    said = {}

    def forget_from(at):
        # An entry dated ``at`` is about to be posted: what was said of later moments may change.
        for moment in [moment for moment in said if moment >= at]:
            del said[moment]

    pending_said = {}

    def checkpoint(moment):
        said.setdefault(moment, report(moment))
        # Pending points are never backdated, so what was said of them is never forgotten.
        pending_said.setdefault(moment, liability.pending_at(as_of=moment))

    end = history_run(seed, checkpoint=checkpoint, backdated=forget_from)
    assert said, "the history took no checkpoint"
    for moment, then in said.items():
        assert report(moment) == then == recompute(moment), moment
    for moment, then in pending_said.items():
        assert liability.pending_at(as_of=moment) == then, moment
    # And at every moment something was posted at: a debit dated before the lot it took from
    # makes the stretch up to that lot's date disagree, however short it is.
    for moment in sorted(set(Entry.objects.values_list("created_at", flat=True))):
        assert report(moment) == recompute(moment), moment
    assert report(end) == recompute(end)


def test_todays_total_is_the_sum_of_positive_balances_and_every_lot_consumption_adds_up(settings):
    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    history_run(11, steps=120)
    now = timezone.now()
    positive = sum(max(b, 0) for b in Account.objects.values_list("balance", flat=True))
    result = liability.liability_at(as_of=now)
    assert result.points == positive == sum(row.points for _m, row in result.by_expiry_month)
    assert result.points == sum(row.points for _t, row in result.by_tier)
    assert result.pending_points == pending_open()
    assert result.debt_points == -sum(
        min(b, 0) for b in Account.objects.values_list("balance", flat=True)
    )
    for lot in Lot.objects.all():
        consumed = sum(lot.consumptions.values_list("points", flat=True))
        assert lot.points - consumed == lot.remaining


def test_a_debit_records_the_lots_it_consumed_in_its_own_transaction():
    member = MemberFactory()
    first = services.points_earn(member=member, points=100, at=START)
    second = services.points_earn(member=member, points=50, at=START + timedelta(days=1))
    redeem = services.points_redeem(member=member, points=120, at=START + timedelta(days=2))
    assert sorted(redeem.consumptions.values_list("lot__entry", "points")) == [
        (first.pk, 100),
        (second.pk, 20),
    ]
    # A refused debit writes neither entry nor consumption.
    with pytest.raises(services.posting.errors.InsufficientPoints):
        services.points_redeem(member=member, points=31)
    assert LotConsumption.objects.count() == 2


def test_a_return_into_debt_then_an_earn_records_what_the_debt_took():
    member = MemberFactory()
    earn = services.points_earn(member=member, points=100, at=START)
    services.points_redeem(member=member, points=80, at=START + timedelta(hours=1))
    services.points_reverse(entry=earn, reason="return", at=START + timedelta(hours=2))
    assert Account.objects.get(member=member).balance == -80
    paid = services.points_earn(member=member, points=50, at=START + timedelta(hours=3))
    assert list(paid.consumptions.values_list("points", flat=True)) == [50]
    later = services.points_earn(member=member, points=100, at=START + timedelta(hours=4))
    assert list(later.consumptions.values_list("points", flat=True)) == [30]
    assert liability.points_outstanding(as_of=START + timedelta(hours=3)) == 0
    assert liability.points_outstanding(as_of=START + timedelta(hours=4)) == 70
    assert liability.debt_at(as_of=START + timedelta(hours=3)) == (1, 30)
    assert liability.debt_at(as_of=START + timedelta(hours=4)) == (0, 0)


def test_consumptions_are_append_only():
    member = MemberFactory()
    services.points_earn(member=member, points=10, at=START)
    services.points_redeem(member=member, points=5, at=START)
    for change in (
        lambda: LotConsumption.objects.update(points=1),
        lambda: LotConsumption.objects.all().delete(),
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change()


def test_the_migration_fills_consumptions_of_an_existing_ledger(settings):
    """The fill's replay (migration 0012) gives the consumptions the services write."""
    import importlib

    fill = importlib.import_module("ledger.migrations.0012_lot_consumption_fill")
    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    history_run(5, steps=120)
    for account in Account.objects.all():
        entries = list(
            Entry.objects.filter(account=account)
            .order_by("id")
            .values_list("id", "kind", "amount", "reference", "created_at")
        )
        lots = {
            entry_id: (pk, points, earned_at)
            for pk, entry_id, points, earned_at in Lot.objects.filter(account=account).values_list(
                "pk", "entry_id", "points", "earned_at"
            )
        }
        replayed, remaining = fill.replay(entries, lots)
        written = sorted(
            LotConsumption.objects.filter(lot__account=account).values_list(
                "entry_id", "lot_id", "points", "at"
            )
        )
        assert sorted(replayed) == written
        assert remaining == dict(Lot.objects.filter(account=account).values_list("pk", "remaining"))


def test_tier_is_the_members_tier_at_the_date():
    from members.models import Tier
    from members.services.tiers import member_tier_set

    silver = Tier.objects.create(name="Silver", rank=1, threshold=0)
    gold = Tier.objects.create(name="Gold", rank=2, threshold=100)
    member = MemberFactory()
    services.points_earn(member=member, points=100, at=START)
    member_tier_set(member=member, tier=silver, reason="qualified", at=START + timedelta(days=1))
    member_tier_set(member=member, tier=gold, reason="qualified", at=START + timedelta(days=5))
    assert liability.by_tier(as_of=START) == {None: 100}
    assert liability.by_tier(as_of=START + timedelta(days=2)) == {silver.pk: 100}
    assert liability.by_tier(as_of=START + timedelta(days=6)) == {gold.pk: 100}


def test_held_and_pending_as_of_a_date():
    member = MemberFactory()
    services.points_earn(member=member, points=100, at=START)
    hold = services.hold_place(member=member, points=30, at=START + timedelta(hours=1))
    services.hold_void(hold=hold, at=START + timedelta(hours=3))
    services.points_earn(
        member=member,
        points=40,
        at=START + timedelta(hours=1),
        pending_until=START + timedelta(hours=5),
    )
    services.points_mature(now=START + timedelta(hours=6))
    at_two = START + timedelta(hours=2)
    assert (liability.held_at(as_of=at_two), liability.pending_at(as_of=at_two)) == (30, 40)
    at_seven = START + timedelta(hours=7)
    assert (liability.held_at(as_of=at_seven), liability.pending_at(as_of=at_seven)) == (0, 0)


def test_pending_of_a_past_date_stays_what_the_report_said_after_later_cancellations():
    member = MemberFactory()
    hour = timedelta(hours=1)
    pending = services.points_earn(
        member=member, points=100, at=START, pending_until=START + timedelta(days=30)
    )
    other = services.points_earn(member=member, points=50, at=START, pending_until=START + 6 * hour)
    said = {moment: liability.pending_at(as_of=moment) for moment in [START, START + hour]}
    assert said == {START: 150, START + hour: 150}
    services.pending_cancel(pending=pending, points=30, at=START + 2 * hour)
    services.pending_cancel(pending=other, points=10, at=START + 2 * hour)
    said[START + 3 * hour] = liability.pending_at(as_of=START + 3 * hour)
    assert said[START + 3 * hour] == 110
    services.pending_cancel(pending=pending, at=START + 4 * hour)  # the remaining 70
    services.points_mature(now=START + 7 * hour)  # the other's remaining 40
    for moment, then in said.items():
        assert liability.pending_at(as_of=moment) == then, moment
    assert liability.pending_at(as_of=START + 5 * hour) == 40
    assert liability.pending_at(as_of=START + 8 * hour) == 0
    assert sorted(PendingCancellation.objects.values_list("pending_id", "points", "at")) == sorted(
        [
            (pending.pk, 30, START + 2 * hour),
            (other.pk, 10, START + 2 * hour),
            (pending.pk, 70, START + 4 * hour),
        ]
    )
    for change in (
        lambda: PendingCancellation.objects.update(points=1),
        lambda: PendingCancellation.objects.all().delete(),
    ):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            change()


def test_a_refused_cancellation_records_nothing():
    member = MemberFactory()
    pending = services.points_earn(
        member=member, points=20, at=START, pending_until=START + timedelta(days=1)
    )
    with pytest.raises(services.posting.errors.InvalidPoints):
        services.pending_cancel(pending=pending, points=21)
    assert not PendingCancellation.objects.exists()


def test_the_migration_records_the_cancellations_the_data_keeps():
    """Migration 0019: a fully cancelled row is one cancellation of its points at its
    resolution; a row still pending had no cancellation the data can show."""
    import importlib

    from django.apps import apps

    fill = importlib.import_module("ledger.migrations.0019_pending_cancellation")
    account = services.posting.account_for(MemberFactory())
    cancelled = PendingEarn.objects.create(
        account=account,
        points=25,
        status=PendingEarn.Status.CANCELLED,
        matures_at=START + timedelta(days=1),
        created_at=START,
        resolved_at=START + timedelta(hours=2),
    )
    PendingEarn.objects.create(account=account, points=5, matures_at=START, created_at=START)
    fill.fill(apps, None)
    assert list(PendingCancellation.objects.values_list("pending_id", "points", "at")) == [
        (cancelled.pk, 25, START + timedelta(hours=2))
    ]
    assert liability.pending_at(as_of=START + timedelta(hours=1)) == 30


def test_money_uses_the_value_in_force_at_the_date(settings):
    settings.LOYALTY_POINT_VALUE = Decimal("0.01")
    member = MemberFactory()
    services.points_earn(member=member, points=1000, at=START)
    PointValue.objects.create(
        valid_from=START + timedelta(days=10), value=Decimal("0.008"), currency="EUR", reason="x"
    )
    assert liability.liability_at(as_of=START + timedelta(days=1)).money == Decimal("10.00")
    assert liability.liability_at(as_of=START + timedelta(days=10)).money == Decimal("8.000")
    assert value_at(START).valid_from is None


def test_as_of_means_the_end_of_the_day_or_second_in_the_programme_zone(settings):
    settings.TIME_ZONE = "Europe/Amsterdam"
    timezone.activate("Europe/Amsterdam")
    try:
        end = moments.as_of_parse("2026-03-31")
        assert timezone.localtime(end).replace(tzinfo=None) == datetime(
            2026, 3, 31, 23, 59, 59, 999999
        )
        second = moments.as_of_parse("2026-03-31 10:15:07")
        assert timezone.localtime(second).replace(tzinfo=None) == datetime(
            2026, 3, 31, 10, 15, 7, 999999
        )
        with pytest.raises(ValueError):
            moments.as_of_parse("31/03/2026")
        assert moments.month_next(date(2026, 12, 1)) == date(2027, 1, 1)
    finally:
        timezone.deactivate()


def test_the_report_answers_in_a_bounded_number_of_queries(django_assert_max_num_queries, settings):
    settings.LOYALTY_EXPIRY_MONTHS = 2
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    history_run(3, steps=30, members=2)
    with django_assert_max_num_queries(12):
        liability.liability_at(as_of=START + timedelta(days=20))
    history_run(4, steps=90, members=6)
    with django_assert_max_num_queries(12):
        liability.liability_at(as_of=START + timedelta(days=20))
