"""`/api/v1/...` (the channel API), `/api/schema/` (OpenAPI 3) and `/api/docs/` (Swagger UI)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from loyalty_site.api.views import base, events, members, purchases, redemptions


class Router(DefaultRouter):
    include_root_view = False


router = Router()
router.register("members", members.MemberViewSet, basename="member")
router.register("cards", members.CardViewSet, basename="card")
router.register("purchases", purchases.PurchaseViewSet, basename="purchase")
router.register("events", events.EventViewSet, basename="event")
router.register("redemptions", redemptions.RedemptionViewSet, basename="redemption")

# The schema and its docs are public: they describe the API, they reveal no data.
_public = {"authentication_classes": [], "permission_classes": [], "throttle_classes": []}

urlpatterns = [
    path(
        "v1/members/<str:id>/ledger/",
        members.LedgerViewSet.as_view({"get": "list"}),
        name="member-ledger",
    ),
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(**_public), name="api-schema"),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(url_name="api-schema", **_public),
        name="api-docs",
    ),
]

urlpatterns.append(re_path(r"^(?P<path>.*)$", base.not_found))
