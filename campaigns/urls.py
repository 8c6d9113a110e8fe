"""The campaigns app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from campaigns.views import queues

urlpatterns: list = [
    # Customer service's work queues: the abuse guard's purchases, engagement moderation.
    path("reviews/", queues.reviews, name="reviews"),
    path("moderation/", queues.moderation, name="moderation"),
]
