from django.urls import path

from bench.reference import views

urlpatterns = [
    path("api/v1/purchases/", views.Earn.as_view()),
    path("api/v1/members/<uuid:public_id>/", views.Balance.as_view()),
    path("noop/", views.Noop.as_view()),
    path("healthz", views.Noop.as_view()),
]
