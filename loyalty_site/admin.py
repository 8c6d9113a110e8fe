"""Admin for API channels (keys, revocation), webhook subscriptions and their deliveries."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework_api_key.admin import APIKeyModelAdmin

from loyalty_site import webhooks
from loyalty_site.channels import channel_keys_revoke
from loyalty_site.models import Channel, ChannelAPIKey, WebhookDelivery, WebhookSubscription


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
class ChannelAdmin(admin.ModelAdmin):
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
class WebhookSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("channel", "url", "event_types", "all_channels", "active", "created_at")
    list_filter = ("active", "all_channels")
    list_select_related = ("channel",)
    search_fields = ("url", "channel__name")
    raw_id_fields = ("channel",)


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
        count = 0
        for delivery in queryset:
            webhooks.delivery_replay(delivery=delivery)
            count += 1
        self.message_user(
            request,
            ngettext("%(n)d delivery queued.", "%(n)d deliveries queued.", count) % {"n": count},
            messages.SUCCESS,
        )
