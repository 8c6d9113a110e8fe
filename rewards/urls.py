"""The rewards app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from rewards import views

urlpatterns: list = [
    path("rewards/", views.reward_list, name="rewards"),
    path("rewards/new/", views.reward_new, name="reward-new"),
    path("rewards/<int:reward_id>/", views.reward_detail, name="reward"),
    path("rewards/<int:reward_id>/edit/", views.reward_edit, name="reward-edit"),
    path(
        "rewards/<int:reward_id>/codes/generate/",
        views.reward_codes_generate,
        name="reward-codes-generate",
    ),
    path(
        "rewards/<int:reward_id>/codes/import/",
        views.reward_codes_import,
        name="reward-codes-import",
    ),
    # Customer service: the shipping list and the redemption search (issue 14).
    path("shipping/", views.shipping_list, name="shipping"),
    path("shipping/<int:redemption_id>/status/", views.shipping_set, name="shipping-set"),
    path("redemptions/", views.redemption_list, name="redemptions"),
    path("redemptions/<int:redemption_id>/", views.redemption_view, name="redemption"),
    path(
        "redemptions/<int:redemption_id>/cancel/",
        views.redemption_cancel,
        name="redemption-page-cancel",
    ),
]
