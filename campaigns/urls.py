"""The campaigns app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from campaigns.views import engagement, queues, rules

urlpatterns: list = [
    # Customer service's work queues: the abuse guard's purchases, engagement moderation.
    path("reviews/", queues.reviews, name="reviews"),
    path("moderation/", queues.moderation, name="moderation"),
    # Marketing: the earning rules and their simulator.
    path("rules/", rules.rule_list, name="rules"),
    path("rules/new/", rules.rule_edit, name="rule-new"),
    path("rules/new/simulate/", rules.rule_simulate, name="rule-new-simulate"),
    path("rules/suggest/<str:condition>/", rules.rule_suggest, name="rule-suggest"),
    path("rules/<int:pk>/", rules.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/simulate/", rules.rule_simulate, name="rule-simulate"),
    # Marketing: engagement kinds, challenges and badges.
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
