"""The work queues in Chromium: four-eyes approvals, purchase reviews, engagement moderation."""

import re
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone
from playwright.sync_api import expect

from campaigns.models import AbuseRule, EngagementEvent, PurchaseReview
from campaigns.services import event_record, purchase_record
from ledger import services
from ledger.models import Account, AdjustmentRequest
from members.models import AuditEntry
from tests.campaigns.factories import EarningRuleFactory, EngagementKindFactory
from tests.factories import MemberFactory


def test_a_large_adjustment_waits_for_finance_who_approves_it(page, sign_in, settings):
    settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD = 1000
    member = MemberFactory(first_name="Anna", last_name="de Vries")
    services.points_earn(member=member, points=320, reference="till-1")

    # Customer service asks for more than the threshold: it waits instead of posting.
    sign_in("Customer service")
    page.goto("/admin/ledger/adjustmentrequest/add/")
    page.fill("#id_member", member.email)
    page.fill("#id_points", "1500")
    page.fill("#id_reason", "Lost points after card replacement")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("waits for a second person")
    assert Account.objects.get(member=member).balance == 320
    page.goto("/approvals/")
    expect(page.locator("h1")).to_contain_text("My adjustment requests")
    expect(page.locator("table.pending")).to_contain_text("Anna de Vries")
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)

    # Finance sees it in its queue, with the member's balance, and approves it.
    sign_in("Finance")
    page.goto("/")
    page.locator("nav.sidebar").get_by_role("link", name="Adjustment approvals").click()
    expect(page).to_have_url(re.compile(r"/approvals/$"))
    expect(page.locator("h1")).to_contain_text("1 waiting")
    row = page.locator("table.pending tbody tr", has_text="Anna de Vries")
    expect(row.locator("td.balance")).to_have_text("320")
    expect(row).to_contain_text("+1,500")
    expect(row).to_contain_text("Lost points after card replacement")
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Approve").click()
    expect(page.locator("p.message.success")).to_contain_text(
        "Anna de Vries: +1500 points approved and posted; the balance is now 1820."
    )
    expect(page.locator("table.pending")).to_contain_text("Nothing waits for approval.")
    assert Account.objects.get(member=member).balance == 1820
    page.get_by_role("link", name="Decided").click()
    expect(page.locator("table.decided")).to_contain_text("Approved")


def test_finance_rejects_with_a_reason_and_the_page_speaks_dutch(page, sign_in, staff_user):
    clerk = staff_user("Customer service")
    member = MemberFactory(first_name="Bram", last_name="Jansen")
    request = services.points_adjust(
        member=member, points=2500, reason="Compensation", actor=clerk, at=timezone.now()
    )
    sign_in("Finance", language="nl")
    page.goto("/approvals/")
    expect(page.locator("html")).to_have_attribute("lang", "nl")
    row = page.locator(f"#adjustment-{request.pk}")
    expect(row).to_contain_text("2.500")  # Dutch thousands separator
    row.locator("details.reject summary").click()
    row.locator("input[name=reason]").fill("Geen bon")
    row.locator("details.reject button[type=submit]").click()
    expect(page.locator("p.message.success")).to_be_visible()
    request.refresh_from_db()
    assert (request.status, request.decision_reason) == ("rejected", "Geen bon")


def test_customer_service_works_both_queues(page, sign_in):
    EarningRuleFactory(name="Base", rate=1)
    AbuseRule.objects.create(kind=AbuseRule.Kind.MEMBER_VELOCITY, threshold=0)
    EngagementKindFactory(code="review", name="Review", points=40, requires_approval=True)
    members = [MemberFactory() for _ in range(3)]
    for i, member in enumerate(members):
        purchase_record(
            member=member,
            channel="pos",
            external_id=f"T-{i}",
            amount=Decimal("25"),
            currency="EUR",
            occurred_at=timezone.now() - timedelta(hours=2),
            store="Utrecht",
        )
        event_record(member=member, kind="review", reference=f"REV-{i}")
    agent = sign_in("Customer service")

    # The review queue: tick all, type a reason, reject; one approved alone first.
    page.goto("/reviews/")
    expect(page.locator("h1")).to_contain_text("3 open")
    first = PurchaseReview.objects.get(purchase__external_id="T-0")
    page.locator(f"#review-{first.pk}").get_by_role("button", name="Approve").click()
    expect(page.locator("p.message.success")).to_have_text("1 purchase approved.")
    expect(page.locator("h1")).to_contain_text("2 open")
    page.locator("input[data-select-all]").check()
    page.fill("#id_reason", "Card shared by a whole office")
    page.get_by_role("button", name="Reject selected").click()
    expect(page.locator("p.message.success")).to_have_text("2 purchases rejected.")
    assert sorted(PurchaseReview.objects.values_list("status", flat=True)) == [
        "approved",
        "rejected",
        "rejected",
    ]
    assert (
        AuditEntry.objects.filter(
            action="purchase_review_reject", actor=agent, reason="Card shared by a whole office"
        ).count()
        == 2
    )

    # The moderation queue: Enter in the reason field decides nothing; a button does.
    page.locator("nav.sidebar").get_by_role("link", name="Engagement moderation").click()
    expect(page.locator("h1")).to_contain_text("3 waiting")
    page.locator("input[name=selected]").first.check()
    page.fill("#id_reason", "Looks genuine")
    page.press("#id_reason", "Enter")
    page.get_by_role("button", name="Approve selected").click()
    expect(page.locator("p.message.success")).to_have_text("1 event approved.")
    statuses = sorted(EngagementEvent.objects.values_list("status", flat=True))
    assert statuses == ["credited", "pending", "pending"]
    assert not AdjustmentRequest.objects.exists()
