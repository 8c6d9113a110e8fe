import pytest

from ledger import errors, services
from ledger.models import AdjustmentRequest, Entry
from ledger.selectors import balance_summary
from tests.factories import MemberFactory, UserFactory

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
    request = services.points_adjust(member=member, points=-500, reason="fraud", actor=clerk)
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
    assert balance_summary(member=member)["balance"] == 50
    assert not Entry.objects.filter(kind=Entry.Kind.ADJUST).exists()
