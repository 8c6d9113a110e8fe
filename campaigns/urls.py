"""The campaigns app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from campaigns.views import campaigns, engagement, queues, rules, segments

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
    # Segments: the list and the builder (campaigns/views/segments.py)
    path("segments/", segments.segment_list, name="segment-list"),
    path("segments/new/", segments.segment_new, name="segment-new"),
    path("segments/presets/", segments.segment_presets, name="segment-presets"),
    path("segments/preview/", segments.segment_preview, name="segment-preview"),
    path("segments/builder/node/", segments.segment_node_new, name="segment-node-new"),
    path("segments/builder/params/", segments.segment_node_params, name="segment-node-params"),
    path("segments/builder/remove/", segments.segment_node_remove, name="segment-node-remove"),
    path("segments/<int:segment_id>/", segments.segment_edit, name="segment-edit"),
    path("segments/<int:segment_id>/count/", segments.segment_count, name="segment-count"),
    path("segments/<int:segment_id>/snapshot/", segments.segment_snapshot, name="segment-snapshot"),
    # Campaigns: the list, the builder, its actions, results (campaigns/views/campaigns.py)
    path("campaigns/", campaigns.campaign_list, name="campaign-list"),
    path("campaigns/new/", campaigns.campaign_new, name="campaign-new"),
    path("campaigns/<int:campaign_id>/", campaigns.campaign_edit, name="campaign-edit"),
    path(
        "campaigns/<int:campaign_id>/actions/<str:action>/",
        campaigns.campaign_action,
        name="campaign-action",
    ),
    path(
        "campaigns/<int:campaign_id>/templates/",
        campaigns.campaign_template_save,
        name="campaign-template-save",
    ),
    path(
        "campaigns/<int:campaign_id>/templates/<int:template_id>/delete/",
        campaigns.campaign_template_delete,
        name="campaign-template-delete",
    ),
    path(
        "campaigns/<int:campaign_id>/offers/",
        campaigns.campaign_offer_add,
        name="campaign-offer-add",
    ),
    path(
        "campaigns/<int:campaign_id>/offers/<int:offer_id>/delete/",
        campaigns.campaign_offer_delete,
        name="campaign-offer-delete",
    ),
    path(
        "campaigns/<int:campaign_id>/preview/",
        campaigns.campaign_message_preview,
        name="campaign-preview",
    ),
    path(
        "campaigns/<int:campaign_id>/simulate/",
        campaigns.campaign_simulate_start,
        name="campaign-simulate",
    ),
    path(
        "campaigns/<int:campaign_id>/results/",
        campaigns.campaign_results_page,
        name="campaign-results",
    ),
    path(
        "campaigns/<int:campaign_id>/results/refresh/",
        campaigns.campaign_results_refresh_start,
        name="campaign-results-refresh",
    ),
]
