"""The campaigns app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from campaigns.views import engagement

urlpatterns: list = [
    path("engagement-kinds/", engagement.engagement_kind_list, name="engagement-kinds"),
    path("engagement-kinds/new/", engagement.engagement_kind_new, name="engagement-kind-new"),
    path(
        "engagement-kinds/<int:kind_id>/edit/",
        engagement.engagement_kind_edit,
        name="engagement-kind-edit",
    ),
    path("challenges/", engagement.challenge_list, name="challenges"),
    path("challenges/new/", engagement.challenge_new, name="challenge-new"),
    path("challenges/<int:challenge_id>/edit/", engagement.challenge_edit, name="challenge-edit"),
    path("challenges/badges/new/", engagement.badge_new, name="badge-new"),
    path("challenges/badges/<int:badge_id>/edit/", engagement.badge_edit, name="badge-edit"),
]
