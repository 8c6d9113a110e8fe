"""The members app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path

from members import views

urlpatterns: list = [
    path("tiers/", views.tiers, name="tiers"),
]
