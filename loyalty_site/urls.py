from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from ledger import views as ledger_views
from loyalty_site import audit_views, channels, export_views, health, member_views, views
from loyalty_site.api import exceptions as api_exceptions

admin.site.site_header = _("Loyalty back office")
admin.site.site_title = _("Loyalty back office")
admin.site.index_title = _("Administration")

urlpatterns = [
    # First: the channel API answers far more requests than every page together, and Django
    # tries the patterns in order (at the end, resolving a purchase took 0.5 ms of CPU).
    path("api/", include("loyalty_site.api.urls")),
    path("", views.home, name="home"),
    path("jobs/<int:job_id>/", views.job_page, name="job"),
    path("jobs/<int:job_id>/download", views.job_download, name="job-download"),
    # Customer service's member search and member page (loyalty_site/member_views.py).
    path("members/", member_views.member_search, name="member-search"),
    path("members/<int:member_id>/", member_views.member_page_view, name="member-page"),
    path("members/<int:member_id>/ledger/", member_views.member_ledger, name="member-page-ledger"),
    path(
        "members/<int:member_id>/purchases/",
        member_views.member_purchases,
        name="member-page-purchases",
    ),
    path(
        "members/<int:member_id>/redemptions/",
        member_views.member_redemptions,
        name="member-page-redemptions",
    ),
    path(
        "members/<int:member_id>/messages/",
        member_views.member_messages,
        name="member-page-messages",
    ),
    path(
        "members/<int:member_id>/engagement/",
        member_views.member_engagement,
        name="member-page-engagement",
    ),
    path("members/<int:member_id>/audit/", member_views.member_audit, name="member-page-audit"),
    path(
        "members/<int:member_id>/redemptions/<int:redemption_id>/resend/",
        member_views.member_voucher_resend,
        name="member-page-voucher-resend",
    ),
    path("members/<int:member_id>/adjust/", member_views.member_adjust, name="member-page-adjust"),
    path(
        "members/<int:member_id>/cards/<int:card_id>/block/",
        member_views.member_card_block,
        name="member-page-card-block",
    ),
    path(
        "members/<int:member_id>/cards/<int:card_id>/replace/",
        member_views.member_card_replace,
        name="member-page-card-replace",
    ),
    path(
        "members/<int:member_id>/consents/", member_views.member_consent, name="member-page-consent"
    ),
    path(
        "members/<int:member_id>/export/",
        member_views.member_export_view,
        name="member-page-export",
    ),
    path(
        "members/<int:member_id>/erase/", member_views.member_erase_view, name="member-page-erase"
    ),
    # The points ledger (ledger/views.py); its channel filter lists this project's channels,
    # which the ledger app may not import.
    path(
        "ledger/",
        ledger_views.ledger_entries,
        {"channel_names": channels.channel_names},
        name="ledger-entries",
    ),
    # The audit log and the exports (loyalty_site/audit_views.py, export_views.py).
    path("audit/", audit_views.audit_page, name="audit"),
    path("audit/export.csv", audit_views.audit_export, name="audit-export"),
    path("exports/", export_views.exports_page, name="exports"),
    path("healthz", health.healthz, name="healthz"),
    path("healthz/workers", health.healthz_workers, name="healthz-workers"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("members.urls")),
    path("", include("ledger.urls")),
    path("", include("rewards.urls")),
    path("", include("campaigns.urls")),
    path("admin/", admin.site.urls),
]

handler400 = api_exceptions.handler400
handler403 = api_exceptions.handler403
handler404 = api_exceptions.handler404
handler500 = api_exceptions.handler500
