"""Point values with dated changes, and period close: a closed report never changes."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone

from ledger import services
from ledger.errors import PeriodClosed
from ledger.finance import liability
from ledger.finance.closing import closed_through, period_close
from ledger.finance.rollforward import rollforward_month
from ledger.finance.values import point_value_change, value_at
from ledger.models import Entry, PeriodClose, PointValue
from loyalty_site.errors import DomainError
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db

MARCH = datetime(2025, 3, 10, 12, tzinfo=timezone.get_fixed_timezone(0))


def test_a_value_change_applies_from_its_date_and_records_who_and_why():
    finance = UserFactory()
    change = point_value_change(
        value=Decimal("0.012"), valid_from=MARCH, reason="new partner rate", actor=finance
    )
    assert (change.recorded_by, change.reason, change.currency) == (
        finance,
        "new partner rate",
        "EUR",
    )
    assert value_at(MARCH - timedelta(seconds=1)).value == Decimal("0.01")
    assert value_at(MARCH).value == Decimal("0.012")
    with pytest.raises(DomainError):
        point_value_change(value=Decimal("0.02"), valid_from=MARCH, reason="again", actor=finance)
    with pytest.raises(DomainError):
        point_value_change(value=Decimal("0.02"), valid_from=MARCH, reason=" ", actor=finance)
    assert PointValue.objects.count() == 1


def test_closing_a_month_stores_its_figures_signed_off():
    finance = UserFactory()
    member = MemberFactory()
    services.points_earn(member=member, points=300, at=MARCH)
    close = period_close(month=date(2025, 3, 1), actor=finance, note="March books")
    assert close.closed_by == finance
    assert close.figures["rollforward"]["closing"] == [300, "3.00"]
    assert close.figures["rollforward"]["difference"] == [0, "0.00"]
    assert close.figures["by_tier"] == {"": 300}
    assert timezone.localtime(closed_through()).date() == date(2025, 3, 31)
    with pytest.raises(DomainError, match="closed already"):
        period_close(month=date(2025, 3, 1), actor=finance)
    with pytest.raises(DomainError, match="2025-04"):
        period_close(month=date(2025, 6, 1), actor=finance)
    with pytest.raises(DomainError, match="over"):
        period_close(month=timezone.localdate(), actor=finance)


@pytest.mark.parametrize("mode", ["move", "refuse"])
def test_an_entry_dated_in_a_closed_month_never_changes_its_report(mode, settings):
    settings.LOYALTY_FINANCE_CLOSED_PERIOD = mode
    finance = UserFactory()
    member = MemberFactory()
    earn = services.points_earn(member=member, points=300, at=MARCH)
    period_close(month=date(2025, 3, 1), actor=finance)
    stored = PeriodClose.objects.get().figures
    late = MARCH + timedelta(days=2)
    if mode == "refuse":
        with pytest.raises(PeriodClosed):
            services.points_redeem(member=member, points=100, at=late)
        with pytest.raises(PeriodClosed):
            services.points_earn_batch(member=member, earns=[{"points": 5, "at": late}])
        assert Entry.objects.count() == 1
    else:
        moved = services.points_redeem(member=member, points=100, at=late)
        assert moved.created_at > closed_through()
        assert moved.explanation == [{"note": "closed_period", "dated": late.isoformat()}]
        (batch,) = services.points_earn_batch(member=member, earns=[{"points": 5, "at": late}])
        assert batch.created_at > closed_through()
    services.points_reverse(entry=earn, points=10, reason="return", at=timezone.now())
    again = rollforward_month(year=2025, month=3)
    assert again.lines["closing"].points == stored["rollforward"]["closing"][0] == 300
    assert liability.by_expiry_month(as_of=closed_through()) == {date(2027, 3, 1): 300}
    with pytest.raises(PeriodClosed):
        point_value_change(value=Decimal("0.02"), valid_from=late, reason="late", actor=finance)


def test_an_entry_of_this_month_needs_no_query_for_the_check(django_assert_num_queries):
    from ledger.finance.closing import dated_in_open_period

    now = timezone.now()
    with django_assert_num_queries(0):
        assert dated_in_open_period(now) == (now, {})


def _closed_report() -> dict:
    result = liability.liability_at(as_of=closed_through())
    return {
        "points": result.points,
        "months": [(month, row.points) for month, row in result.by_expiry_month],
        "tiers": [(tier.pk if tier else None, row.points) for tier, row in result.by_tier],
        "debt": (result.members_in_debt, result.debt_points),
        "pending": result.pending_points,
        "held": result.held_points,
    }


def _late_writes():
    """Every write that can date something: what it writes and where that lands (its date)."""
    from campaigns.tiers import tiers_recalculate
    from members.models import TierHistory
    from members.services.tiers import member_tier_set

    def redeem(w):
        return services.points_redeem(member=w.member, points=10, at=w.late).created_at

    def earn(w):
        return services.points_earn(member=w.member, points=10, at=w.late).created_at

    def earn_batch(w):
        (entry,) = services.points_earn_batch(member=w.member, earns=[{"points": 5, "at": w.late}])
        return entry.created_at

    def adjust(w):
        entry = services.points_adjust(
            member=w.member, points=-10, reason="late fix", actor=w.staff, at=w.late
        )
        return entry.created_at

    def transfer(w):
        services.points_transfer(
            source=w.member, target=w.other, points=10, reason="household", at=w.late
        )
        return Entry.objects.filter(kind=Entry.Kind.TRANSFER).latest("id").created_at

    def reverse(w):
        return services.points_reverse(
            entry=w.earn, points=10, reason="return", at=w.late
        ).created_at

    def expire(w):
        services.points_expire(now=w.late)
        return Entry.objects.get(kind=Entry.Kind.EXPIRE).created_at

    def pending_earn(w):
        pending = services.points_earn(
            member=w.member, points=7, at=w.late, pending_until=w.late + timedelta(days=400)
        )
        return pending.created_at

    def pending_cancel(w):
        services.pending_cancel(pending=w.pending, points=5, at=w.late)
        return w.pending.cancellations.get().at

    def hold_place(w):
        return services.hold_place(member=w.member, points=5, at=w.late).created_at

    def hold_void(w):
        return services.hold_void(hold=w.hold, at=w.late).resolved_at

    def hold_post(w):
        entry = services.hold_post(hold=w.hold, at=w.late)
        w.hold.refresh_from_db()
        assert w.hold.resolved_at == entry.created_at
        return entry.created_at

    def tier_set(w):
        member_tier_set(
            member=w.member, tier=w.gold, reason="staff", actor=w.staff, note="late", at=w.late
        )
        return TierHistory.objects.get(to_tier=w.gold).at

    def tier_recalc(w):
        tiers_recalculate(now=w.late)
        return TierHistory.objects.get(to_tier=w.gold).at

    return [
        redeem, earn, earn_batch, adjust, transfer, reverse, expire, pending_earn,
        pending_cancel, hold_place, hold_void, hold_post, tier_set, tier_recalc,
    ]  # fmt: skip


@pytest.mark.parametrize("write", _late_writes(), ids=lambda write: write.__name__)
@pytest.mark.parametrize("mode", ["move", "refuse"])
def test_every_write_dated_in_a_closed_month_is_moved_or_refused(write, mode, settings):
    from types import SimpleNamespace

    from members.models import Tier

    settings.LOYALTY_FINANCE_CLOSED_PERIOD = mode
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 10**6
    # A window long enough that a recalculation moved to now still finds the March points.
    Tier.objects.create(name="Silver", rank=1, threshold=0, window_months=120)
    gold = Tier.objects.create(name="Gold", rank=2, threshold=100, window_months=120)
    member, other = MemberFactory(), MemberFactory()
    earn = services.points_earn(member=member, points=300, at=MARCH)
    services.points_earn(member=member, points=50, at=MARCH, expires_at=MARCH + timedelta(days=1))
    pending = services.points_earn(
        member=member, points=40, at=MARCH, pending_until=MARCH + timedelta(days=400)
    )
    hold = services.hold_place(
        member=member, points=20, at=MARCH, expires_at=MARCH + timedelta(days=400)
    )
    period_close(month=date(2025, 3, 1), actor=UserFactory())
    before = _closed_report()
    late = MARCH + timedelta(days=2)
    world = SimpleNamespace(
        member=member, other=other, earn=earn, pending=pending, hold=hold, gold=gold,
        staff=UserFactory(), late=late,
    )  # fmt: skip
    if mode == "refuse":
        # Its own transaction, as every caller has: an earn adds no savepoint of its own.
        with pytest.raises(PeriodClosed), transaction.atomic():
            write(world)
    else:
        assert write(world) > closed_through()
    assert _closed_report() == before
    assert rollforward_month(year=2025, month=3).lines["difference"].points == 0
