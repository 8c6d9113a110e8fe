"""The rewards app's back-office pages (included at the site's root by loyalty_site/urls.py)."""

from django.urls import path  # noqa: F401 - the pages add their routes here

urlpatterns: list = []
