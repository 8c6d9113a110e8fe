"""The ledger app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from ledger import views

urlpatterns: list = [
    # The approval queue of staff adjustments (four eyes).
    path("approvals/", views.approvals, name="approvals"),
    path("approvals/<int:pk>/approve", views.approval_approve, name="approval-approve"),
    path("approvals/<int:pk>/reject", views.approval_reject, name="approval-reject"),
]
