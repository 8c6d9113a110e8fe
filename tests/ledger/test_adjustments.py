from datetime import UTC, datetime

import pytest

from ledger import errors, services
from ledger.models import AdjustmentRequest, Entry
from ledger.selectors import balance_summary
from tests.factories import MemberFactory, UserFactory
from tests.ledger.concurrency import run_together

pytestmark = pytest.mark.django_db


def test_small_adjustment_posts_large_one_waits_for_a_second_person(settings, assert_reconciled):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    member = MemberFactory()
    clerk, supervisor = UserFactory(), UserFactory()
    with pytest.raises(errors.ReasonRequired) as exc:
        services.points_adjust(member=member, points=10, reason="  ", actor=clerk)
    assert exc.value.code == "reason_required"
    small = services.points_adjust(member=member, points=100, reason="goodwill", actor=clerk)
    assert isinstance(small, Entry)
    assert (small.kind, small.amount, small.actor, small.reason) == (
        "adjust",
        100,
        clerk,
        "goodwill",
    )
    request = services.points_adjust(member=member, points=500, reason="lost receipt", actor=clerk)
    assert isinstance(request, AdjustmentRequest)
    assert (request.points, request.status, request.requested_by) == (500, "pending", clerk)
    assert balance_summary(member=member)["balance"] == 100

    with pytest.raises(errors.SelfApproval) as exc:
        services.adjustment_approve(request=request, actor=clerk)
    assert exc.value.code == "self_approval"
    entry = services.adjustment_approve(request=request, actor=supervisor)
    assert entry.amount == 500 and entry.reason == "lost receipt"
    assert entry.reference == f"adjustment-request:{request.pk}"
    with pytest.raises(errors.RequestNotPending) as exc:
        services.adjustment_approve(request=request, actor=supervisor)
    assert exc.value.code == "request_not_pending"
    assert Entry.objects.filter(kind=Entry.Kind.ADJUST).count() == 2
    assert balance_summary(member=member)["balance"] == 600
    request.refresh_from_db()
    assert (request.status, request.decided_by, request.entry) == ("approved", supervisor, entry)
    assert_reconciled()


def test_staff_debit_never_below_zero_and_reject(settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 100
    member = MemberFactory()
    clerk, supervisor = UserFactory(), UserFactory()
    services.points_earn(member=member, points=50)
    with pytest.raises(errors.InsufficientPoints) as exc:
        services.points_adjust(member=member, points=-51, reason="fix", actor=clerk)
    assert exc.value.code == "insufficient_points"
    # A debit above the threshold that the balance cannot cover is refused when it is requested,
    # not only when it is approved.
    with pytest.raises(errors.InsufficientPoints) as exc:
        services.points_adjust(member=member, points=-500, reason="fraud", actor=clerk)
    assert exc.value.code == "insufficient_points"
    assert not AdjustmentRequest.objects.exists()
    services.points_earn(member=member, points=500)
    request = services.points_adjust(member=member, points=-500, reason="fraud", actor=clerk)
    assert request.status == "pending"
    services.points_redeem(member=member, points=100)
    # ... and checked again when it is approved.
    with pytest.raises(errors.InsufficientPoints):
        services.adjustment_approve(request=request, actor=supervisor)
    services.adjustment_reject(request=request, actor=supervisor, reason="no")
    request.refresh_from_db()
    assert (request.status, request.decided_by, request.decision_reason) == (
        "rejected",
        supervisor,
        "no",
    )
    assert request.entry is None
    assert balance_summary(member=member)["balance"] == 50 + 500 - 100
    assert not Entry.objects.filter(kind=Entry.Kind.ADJUST).exists()


def test_small_adjustments_of_one_agent_beyond_the_daily_limit_need_a_second_person(settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 1000
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 2000
    clerk, colleague, supervisor = UserFactory(), UserFactory(), UserFactory()
    members = MemberFactory.create_batch(5)
    results = [
        services.points_adjust(member=member, points=1000, reason="goodwill", actor=clerk)
        for member in members
    ]
    assert [type(result) for result in results] == [Entry, Entry] + [AdjustmentRequest] * 3
    assert all(result.status == "pending" for result in results[2:])
    # Debits count as well (absolute sum), and the limit is the agent's, not the member's.
    services.points_earn(member=members[0], points=100)
    debit = services.points_adjust(member=members[0], points=-1, reason="fix", actor=clerk)
    assert isinstance(debit, AdjustmentRequest)
    assert isinstance(
        services.points_adjust(member=members[0], points=1000, reason="goodwill", actor=colleague),
        Entry,
    )
    # An approved request does not use up the agent's day: a second person checked it.
    services.adjustment_approve(request=results[2], actor=supervisor)
    assert isinstance(
        services.points_adjust(member=members[3], points=1, reason="fix", actor=clerk),
        AdjustmentRequest,
    )


def test_daily_limit_counts_the_programmes_day(settings):
    settings.TIME_ZONE = "Europe/Amsterdam"
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 1000
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 1500
    clerk, member = UserFactory(), MemberFactory()
    # 22:30 UTC on 1 March is 23:30 in Amsterdam; 23:30 UTC is already 2 March there.
    late = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)
    next_day = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    first = services.points_adjust(member=member, points=1000, reason="a", actor=clerk, at=late)
    second = services.points_adjust(
        member=member, points=1000, reason="b", actor=clerk, at=next_day
    )
    assert (type(first), type(second)) == (Entry, Entry)
    third = services.points_adjust(member=member, points=600, reason="c", actor=clerk, at=next_day)
    assert isinstance(third, AdjustmentRequest)


@pytest.mark.django_db(transaction=True)
def test_concurrent_adjustments_of_one_agent_cannot_all_slip_under_the_daily_limit(settings):
    # Each call runs on its own connection, on its own member's account: only the lock on the
    # agent serialises them, so that each sees the others' points of the day.
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 1000
    settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT = 2000
    clerk = UserFactory()
    members = MemberFactory.create_batch(8)
    results = run_together(
        *(
            lambda member=member: services.points_adjust(
                member=member, points=400, reason="goodwill", actor=clerk
            )
            for member in members
        )
    )
    assert not [result for result in results if isinstance(result, BaseException)]
    assert sum(isinstance(result, Entry) for result in results) == 5
    assert AdjustmentRequest.objects.filter(requested_by=clerk, status="pending").count() == 3
