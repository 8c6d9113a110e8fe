"""The campaigns app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from campaigns.views import rules

urlpatterns: list = [
    path("rules/", rules.rule_list, name="rules"),
    path("rules/new/", rules.rule_edit, name="rule-new"),
    path("rules/new/simulate/", rules.rule_simulate, name="rule-new-simulate"),
    path("rules/suggest/<str:condition>/", rules.rule_suggest, name="rule-suggest"),
    path("rules/<int:pk>/", rules.rule_edit, name="rule-edit"),
    path("rules/<int:pk>/simulate/", rules.rule_simulate, name="rule-simulate"),
]
