from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from loyalty_site import audit_views, export_views, health, views
from loyalty_site.api import exceptions as api_exceptions

admin.site.site_header = _("Loyalty back office")
admin.site.site_title = _("Loyalty back office")
admin.site.index_title = _("Administration")

urlpatterns = [
    path("", views.home, name="home"),
    path("jobs/<int:job_id>/", views.job_page, name="job"),
    path("jobs/<int:job_id>/download", views.job_download, name="job-download"),
    path("audit/", audit_views.audit_page, name="audit"),
    path("audit/export.csv", audit_views.audit_export, name="audit-export"),
    path("exports/", export_views.exports_page, name="exports"),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/workers", health.healthz_workers, name="healthz-workers"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("ledger.urls")),
    path("", include("rewards.urls")),
    path("", include("campaigns.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("loyalty_site.api.urls")),
]

handler400 = api_exceptions.handler400
handler403 = api_exceptions.handler403
handler404 = api_exceptions.handler404
handler500 = api_exceptions.handler500
