"""The ledger app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from ledger import views
from ledger.finance import views as finance

urlpatterns: list = [
    # The approval queue of staff adjustments (four eyes).
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/approve", views.approval_approve, name="approval-approve"),
    path("approvals/<int:pk>/reject", views.approval_reject, name="approval-reject"),
    # Finance: the liability report and the month's close.
    path("finance/", finance.finance, name="finance"),
    path("finance/section/<slug:name>/", finance.finance_section, name="finance-section"),
    path("finance/close/", finance.finance_close, name="finance-close"),
    path("finance/value/", finance.finance_value, name="finance-value"),
    path("finance/estimate/", finance.finance_estimate, name="finance-estimate"),
    path("finance/export/members/", finance.finance_member_export, name="finance-member-export"),
    path("finance/reconcile/", finance.finance_reconcile, name="finance-reconcile"),
]
