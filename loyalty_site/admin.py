"""Admin for API channels (keys, revocation), webhook subscriptions and their deliveries, and
the member actions that span every app (data export, erasure, import).

``members`` may not import the apps above it, so its MemberAdmin knows only members; the
export, erasure and import are composed here, at the top, and this module registers the member
admin again with them. ``loyalty_site`` comes first in INSTALLED_APPS, so the explicit import of
``members.admin`` below is what registers the base admin before it is replaced.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin as BaseGroupAdmin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ImportMixin
from rest_framework_api_key.admin import APIKeyModelAdmin

from ledger import admin as ledger_admin
from ledger.models import Entry, Purchase
from loyalty_site import webhooks
from loyalty_site.channels import channel_keys_revoke, channel_names
from loyalty_site.member_import import MemberImportResource
from loyalty_site.models import Channel, ChannelAPIKey, WebhookDelivery, WebhookSubscription
from loyalty_site.privacy import member_erase, member_export
from members import admin as members_admin
from members.admin_actions import rows_run
from members.change_reason import ChangeReasonAdmin
from members.models import Member


class EraseForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("E.g. the member's erasure request and its date. Recorded in the audit log."),
    )


class MemberAdmin(ImportMixin, members_admin.MemberAdmin):
    actions = ["export_selected", "erase_selected"]
    resource_classes = [MemberImportResource]

    # --- import (django-import-export): dry run first, row errors, all or nothing ---
    def get_import_resource_kwargs(self, request, **kwargs):
        resource_kwargs = super().get_import_resource_kwargs(request, **kwargs)
        form = kwargs.get("form")
        source = "admin import"
        if form is not None and hasattr(form, "cleaned_data"):
            uploaded = form.cleaned_data.get("import_file")
            source = form.cleaned_data.get("original_file_name") or getattr(
                uploaded, "name", source
            )
        resource_kwargs.update(actor=request.user, source=source)
        return resource_kwargs

    def has_import_permission(self, request):
        return request.user.has_perm("members.add_member")

    # --- privacy actions ---
    @admin.action(description=_("Export personal data (JSON)"), permissions=["export"])
    def export_selected(self, request, queryset):
        documents = [member_export(member=member, actor=request.user) for member in queryset]
        body = json.dumps(documents[0] if len(documents) == 1 else documents, indent=2)
        response = HttpResponse(body, content_type="application/json")
        name = f"member-{documents[0]['member']['id']}" if len(documents) == 1 else "members"
        response["Content-Disposition"] = f'attachment; filename="{name}.json"'
        return response

    @admin.action(description=_("Erase personal data"), permissions=["erase"])
    def erase_selected(self, request, queryset):
        form = EraseForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            reason = form.cleaned_data["reason"]
            rows_run(
                self,
                request,
                queryset,
                lambda member: member_erase(member=member, actor=request.user, reason=reason),
                done=lambda n: (
                    ngettext("%(count)d member erased.", "%(count)d members erased.", n)
                    % {"count": n}
                ),
            )
            return None
        return TemplateResponse(
            request,
            "members/erase_confirm.html",
            {
                **self.admin_site.each_context(request),
                "title": _("Erase personal data"),
                "members": queryset,
                "form": form,
                "opts": self.model._meta,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def has_export_permission(self, request):
        return request.user.has_perm("members.export_member")

    def has_erase_permission(self, request):
        return request.user.has_perm("members.erase_member")


admin.site.unregister(Member)
admin.site.register(Member, MemberAdmin)


# --- the ledger's channel filters: their choices are the channels, which live up here ---
class EntryAdmin(ledger_admin.EntryAdmin):
    channel_names = staticmethod(channel_names)


class PurchaseAdmin(ledger_admin.PurchaseAdmin):
    channel_names = staticmethod(channel_names)


for _model, _admin in ((Entry, EntryAdmin), (Purchase, PurchaseAdmin)):
    admin.site.unregister(_model)
    admin.site.register(_model, _admin)


# --- staff users and roles ---
# An Administrator manages staff users and puts them in roles, but who holds which permission is
# the code's record (loyalty_site/roles.py), and superuser status bypasses every check. So only a
# superuser may grant superuser, give a user permissions of their own or change a group's
# permissions: for anyone else those fields are shown read-only, and a posted value is ignored.
SUPERUSER_ONLY_USER_FIELDS = ("is_superuser", "user_permissions")


class UserAdmin(BaseUserAdmin):
    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, *SUPERUSER_ONLY_USER_FIELDS)


class GroupAdmin(BaseGroupAdmin):
    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return readonly
        return (*readonly, "permissions")


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, GroupAdmin)


class ChannelAPIKeyInline(admin.TabularInline):
    model = ChannelAPIKey
    fields = ("prefix", "name", "created", "expiry_date", "revoked")
    readonly_fields = ("prefix", "name", "created", "expiry_date", "revoked")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        # New keys come from `manage.py create_channel` or the channel API key page, which show
        # the key once.
        return False


@admin.register(Channel)
class ChannelAdmin(ChangeReasonAdmin, admin.ModelAdmin):
    list_display = ("name", "kind", "active", "scopes", "stores", "created_at")
    list_filter = ("kind", "active")
    search_fields = ("name",)
    inlines = [ChannelAPIKeyInline]
    actions = ["revoke_keys"]

    @admin.action(description=_("Revoke all keys of the selected channels"))
    def revoke_keys(self, request, queryset):
        count = channel_keys_revoke(channels=list(queryset), actor=request.user)
        self.message_user(
            request,
            ngettext("%(n)d key revoked.", "%(n)d keys revoked.", count) % {"n": count},
            messages.SUCCESS,
        )


@admin.register(ChannelAPIKey)
class ChannelAPIKeyAdmin(APIKeyModelAdmin):
    list_display = (*APIKeyModelAdmin.list_display, "channel")
    list_filter = (*APIKeyModelAdmin.list_filter, "revoked")
    list_select_related = ("channel",)
    search_fields = (*APIKeyModelAdmin.search_fields, "channel__name")
    raw_id_fields = ("channel",)


@admin.register(WebhookSubscription)
class WebhookSubscriptionAdmin(ChangeReasonAdmin, admin.ModelAdmin):
    list_display = ("channel", "url", "event_types", "all_channels", "active", "created_at")
    list_filter = ("active", "all_channels")
    list_select_related = ("channel",)
    search_fields = ("url", "channel__name")
    raw_id_fields = ("channel",)
    readonly_fields = ("standard_webhooks_secret",)

    @admin.display(description=_("Secret for Standard Webhooks libraries"))
    def standard_webhooks_secret(self, obj):
        return webhooks.standard_webhooks_secret(obj.secret) if obj and obj.secret else "-"


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "event_type",
        "event_id",
        "subscription",
        "status",
        "attempts",
        "response_status",
        "created_at",
        "last_attempt_at",
    )
    list_filter = ("status", "event_type")
    list_select_related = ("subscription__channel",)
    search_fields = ("=event_id",)
    raw_id_fields = ("subscription",)
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    show_full_result_count = False
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description=_("Send the selected deliveries again"))
    def replay(self, request, queryset):
        rows_run(
            self,
            request,
            queryset,
            lambda delivery: webhooks.delivery_replay(delivery=delivery),
            done=lambda n: (
                ngettext("%(n)d delivery queued.", "%(n)d deliveries queued.", n) % {"n": n}
            ),
        )
