"""The campaigns app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from campaigns.views import queues, rules

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
]
