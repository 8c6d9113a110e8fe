"""The back office for the catalogue, voucher pools, redemptions and shipping.

Every change of a redemption goes through rewards.services (actions below), never through the
form: the ledger hold, stock and voucher code must move together with the status.
"""

import csv

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy
from import_export import fields, resources
from import_export.admin import ImportMixin
from import_export.widgets import DateTimeWidget, ForeignKeyWidget

from members.admin_actions import rows_run
from members.admin_numbers import NumbersInRange
from members.change_reason import ChangeReasonAdmin
from rewards import codes, services
from rewards.models import (
    ChannelKind,
    Fulfilment,
    Redemption,
    Reward,
    RewardTierPrice,
    VoucherCode,
)


def _https_urls(field, **kwargs):
    # Addresses typed without a scheme are https (Django 6's default, chosen now).
    if field.name == "image_url":
        kwargs["assume_scheme"] = "https"
    return field.formfield(**kwargs)


class RewardForm(forms.ModelForm):
    channels = forms.MultipleChoiceField(
        label=_("channels"),
        choices=ChannelKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every channel."),
    )

    class Meta:
        model = Reward
        formfield_callback = _https_urls
        fields = (
            "kind",
            "active",
            "sort_order",
            "name_en",
            "name_nl",
            "description_en",
            "description_nl",
            "image",
            "image_url",
            "points",
            "stock",
            "limit_per_member",
            "visible_tiers",
            "channels",
            "valid_from",
            "valid_until",
        )


class GenerateCodesForm(ActionForm):
    count = forms.IntegerField(
        label=_("codes"), required=False, min_value=1, max_value=100_000, initial=100
    )


class ReasonActionForm(ActionForm):
    """The changelist's action bar with the reason a staff change needs (audited with it)."""

    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=255,
        help_text=_("Recorded in the member's audit trail with your name."),
    )


def _action_reason(modeladmin, request) -> str | None:
    """The reason typed in the action bar, or None (with an error message) when it is empty."""
    reason = (request.POST.get("reason") or "").strip()
    if not reason:
        modeladmin.message_user(
            request, _("Give a reason for this change; nothing was changed."), messages.ERROR
        )
        return None
    return reason


class RewardTierPriceInline(NumbersInRange, admin.TabularInline):
    model = RewardTierPrice
    extra = 0


def _count(queryset) -> Coalesce:
    return Coalesce(
        Subquery(
            queryset.order_by().values("reward_id").annotate(n=Count("pk")).values("n")[:1],
            output_field=IntegerField(),
        ),
        Value(0),
    )


@admin.register(Reward)
class RewardAdmin(ChangeReasonAdmin, NumbersInRange, admin.ModelAdmin):
    form = RewardForm
    action_form = GenerateCodesForm
    list_display = (
        "name_en",
        "kind",
        "points",
        "stock",
        "codes_left",
        "redeemed",
        "valid_until",
        "sort_order",
        "active",
    )
    list_editable = ("sort_order", "active")
    list_filter = ("kind", "active", "offer_only")
    search_fields = ("name_en", "name_nl")
    filter_horizontal = ("visible_tiers",)
    inlines = [RewardTierPriceInline]
    actions = ["generate_codes"]
    fieldsets = (
        (None, {"fields": ("kind", "active", "sort_order")}),
        (
            _("Text and image"),
            {
                "fields": (
                    "name_en",
                    "name_nl",
                    "description_en",
                    "description_nl",
                    "image",
                    "image_url",
                )
            },
        ),
        (_("Price and stock"), {"fields": ("points", "stock", "limit_per_member")}),
        (
            _("Who, where and when"),
            {
                "fields": (
                    "visible_tiers",
                    "channels",
                    "valid_from",
                    "valid_until",
                    "offer_only",
                )
            },
        ),
    )

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "image_url":
            # Addresses typed without a scheme are https (Django 6's default, chosen now).
            kwargs["assume_scheme"] = "https"
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def get_queryset(self, request):
        # Counted in subqueries, not joins: two joined counts would multiply each other.
        return (
            super()
            .get_queryset(request)
            .annotate(
                codes_unused=_count(
                    VoucherCode.objects.filter(
                        reward_id=OuterRef("pk"), status=VoucherCode.Status.UNUSED
                    )
                ),
                redeemed_count=_count(
                    Redemption.objects.filter(
                        reward_id=OuterRef("pk"), status=Redemption.Status.CONFIRMED
                    )
                ),
            )
        )

    @admin.display(description=_("codes left"), ordering="codes_unused")
    def codes_left(self, reward):
        if not reward.gives_code:
            return "–"
        url = reverse("admin:rewards_vouchercode_changelist")
        return format_html(
            '<a href="{}?reward__id__exact={}&status__exact=unused">{}</a>',
            url,
            reward.pk,
            reward.codes_unused,
        )

    @admin.display(description=_("redeemed"), ordering="redeemed_count")
    def redeemed(self, reward):
        return reward.redeemed_count

    def has_generate_codes_permission(self, request):
        return request.user.has_perm("rewards.add_vouchercode")

    @admin.action(description=_("Generate voucher codes"), permissions=["generate_codes"])
    def generate_codes(self, request, queryset):
        count = request.POST.get("count") or ""
        if not count.isdigit() or not 0 < int(count) <= 100_000:
            self.message_user(
                request, _("Enter how many codes to generate (1–100000)."), messages.ERROR
            )
            return
        for reward in queryset:
            if not reward.gives_code:
                self.message_user(
                    request,
                    _("%(reward)s gives no codes; skipped.") % {"reward": reward},
                    messages.WARNING,
                )
                continue
            created = services.voucher_codes_generate(reward=reward, count=int(count))
            self.message_user(
                request,
                ngettext_lazy(
                    "%(count)d code added to %(reward)s.",
                    "%(count)d codes added to %(reward)s.",
                    "count",
                )
                % {"count": len(created), "reward": reward},
            )


class VoucherCodeResource(resources.ModelResource):
    """CSV/XLSX columns: code, reward (the reward's id from the catalogue), expires_at
    (optional, ISO date and time). Codes that exist already are skipped, never re-assigned."""

    reward = fields.Field(
        attribute="reward", column_name="reward", widget=ForeignKeyWidget(Reward, "pk")
    )
    expires_at = fields.Field(
        attribute="expires_at",
        column_name="expires_at",
        widget=DateTimeWidget(format="%Y-%m-%d %H:%M"),
    )

    class Meta:
        model = VoucherCode
        fields = ("code", "reward", "expires_at")
        import_id_fields = ("code",)
        skip_unchanged = True
        report_skipped = True

    def before_import_row(self, row, **kwargs):
        row["code"] = codes.normalise(str(row.get("code") or ""))
        if not row["code"]:
            raise ValueError(_("A code is empty."))

    def skip_row(self, instance, original, row, import_validation_errors=None):
        # An existing code may already be issued to a member: importing must not move it.
        return bool(original and original.pk)


@admin.register(VoucherCode)
class VoucherCodeAdmin(ImportMixin, admin.ModelAdmin):
    resource_classes = [VoucherCodeResource]
    list_display = (
        "code",
        "reward",
        "status",
        "expires_at",
        "issued_at",
        "used_at",
        "used_channel",
    )
    list_filter = ("status", "reward")
    search_fields = ("=code",)
    list_select_related = ("reward",)
    raw_id_fields = ("reward", "redemption")
    readonly_fields = ("status", "redemption", "issued_at", "used_at", "used_channel")
    show_full_result_count = False

    def has_import_permission(self, request):
        return request.user.has_perm("rewards.add_vouchercode")

    def has_delete_permission(self, request, obj=None):
        # An issued code is part of a member's redemption; only unused codes may go.
        if obj is not None and obj.status != VoucherCode.Status.UNUSED:
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset):
        services.voucher_codes_discard(codes=list(queryset))


def _cell(value) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ would run in Excel.
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _csv_response(filename: str, header: list, rows) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")  # Excel needs the BOM to read UTF-8.
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(value) for value in row])
    return response


class RedemptionAdminBase(admin.ModelAdmin):
    list_select_related = ("member", "reward", "voucher_code")
    raw_id_fields = ("member", "reward", "hold", "entry")
    search_fields = ("=member__email", "=voucher_code__code", "reference", "=member__public_id")
    show_full_result_count = False
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("code"))
    def code(self, redemption):
        voucher = getattr(redemption, "voucher_code", None)
        return voucher.code if voucher else ""

    @admin.display(description=_("reward"), ordering="reward__name_en")
    def reward_name(self, redemption):
        return redemption.reward.name if redemption.reward_id else _("Points")


@admin.register(Redemption)
class RedemptionAdmin(RedemptionAdminBase):
    list_display = (
        "pk",
        "created_at",
        "member",
        "reward_name",
        "points",
        "status",
        "channel",
        "code",
        "fulfilment_status",
    )
    list_filter = ("status", "fulfilment_status", "reward__kind")
    fields = (
        "member",
        "reward",
        "points",
        "status",
        "channel",
        "reference",
        "code",
        "discount_amount",
        "currency",
        "created_at",
        "reserved_until",
        "confirmed_at",
        "ended_at",
        "hold",
        "entry",
        "fulfilment_status",
        "shipping_address",
        "tracking_code",
    )
    readonly_fields = tuple(f for f in fields if f not in ("shipping_address", "tracking_code"))
    action_form = ReasonActionForm
    actions = ["cancel_reservations", "export_csv"]

    @admin.action(description=_("Cancel selected reservations"), permissions=["change"])
    def cancel_reservations(self, request, queryset):
        reason = _action_reason(self, request)
        if reason is None:
            return
        rows_run(
            self,
            request,
            queryset,
            lambda redemption: services.redemption_cancel(
                redemption=redemption, actor=request.user, reason=reason
            ),
            done=lambda n: (
                ngettext_lazy(
                    "%(count)d reservation cancelled; its points and stock are back.",
                    "%(count)d reservations cancelled; their points and stock are back.",
                    "count",
                )
                % {"count": n}
            ),
        )

    @admin.action(description=_("Export selected as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        header = [
            _("redemption"),
            _("created at"),
            _("member"),
            _("reward"),
            _("points"),
            _("status"),
            _("channel"),
            _("reference"),
            _("discount"),
            _("currency"),
        ]
        rows = (
            [
                r.pk,
                timezone.localtime(r.created_at).isoformat(timespec="seconds"),
                r.member.public_id,
                r.reward.name if r.reward_id else "",
                r.points,
                r.status,
                r.channel,
                r.reference,
                r.discount_amount,
                r.currency,
            ]
            for r in queryset.select_related("member", "reward").iterator(chunk_size=2000)
        )
        return _csv_response("redemptions.csv", header, rows)


@admin.register(Fulfilment)
class FulfilmentAdmin(RedemptionAdminBase):
    change_list_template = "admin/rewards/fulfilment/change_list.html"
    list_display = (
        "pk",
        "created_at",
        "member",
        "reward_name",
        "fulfilment_status",
        "shipping_address",
        "tracking_code",
        "fulfilment_updated_at",
    )
    list_filter = ("fulfilment_status", "reward")
    fields = (
        "member",
        "reward",
        "status",
        "created_at",
        "fulfilment_status",
        "fulfilment_updated_at",
        "shipping_address",
        "tracking_code",
    )
    readonly_fields = (
        "member",
        "reward",
        "status",
        "created_at",
        "fulfilment_status",
        "fulfilment_updated_at",
    )
    action_form = ReasonActionForm
    actions = ["mark_shipped", "mark_delivered", "mark_returned", "export_to_ship"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(fulfilment_status="")

    def get_urls(self):
        return [
            path(
                "export-to-ship/",
                self.admin_site.admin_view(self.export_all_to_ship),
                name="rewards_fulfilment_export",
            ),
            *super().get_urls(),
        ]

    def _mark(self, request, queryset, status, message):
        # The same service as the shipping page (/shipping/), audited with who and why.
        reason = _action_reason(self, request)
        if reason is None:
            return
        rows_run(
            self,
            request,
            queryset,
            lambda redemption: services.fulfilment_set(
                redemption=redemption, status=status, actor=request.user, reason=reason
            ),
            done=lambda n: message % {"count": n},
        )

    @admin.action(description=_("Mark selected as shipped"), permissions=["change"])
    def mark_shipped(self, request, queryset):
        self._mark(
            request,
            queryset,
            Redemption.FulfilmentStatus.SHIPPED,
            ngettext_lazy(
                "%(count)d parcel marked shipped.", "%(count)d parcels marked shipped.", "count"
            ),
        )

    @admin.action(description=_("Mark selected as delivered"), permissions=["change"])
    def mark_delivered(self, request, queryset):
        self._mark(
            request,
            queryset,
            Redemption.FulfilmentStatus.DELIVERED,
            ngettext_lazy(
                "%(count)d parcel marked delivered.", "%(count)d parcels marked delivered.", "count"
            ),
        )

    @admin.action(description=_("Mark selected as returned"), permissions=["change"])
    def mark_returned(self, request, queryset):
        self._mark(
            request,
            queryset,
            Redemption.FulfilmentStatus.RETURNED,
            ngettext_lazy(
                "%(count)d parcel marked returned.", "%(count)d parcels marked returned.", "count"
            ),
        )

    @admin.action(description=_("Export selected as a shipping list (CSV)"), permissions=["view"])
    def export_to_ship(self, request, queryset):
        return self._shipping_csv(queryset)

    def export_all_to_ship(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self._shipping_csv(
            super()
            .get_queryset(request)
            .filter(fulfilment_status=Redemption.FulfilmentStatus.TO_SHIP)
        )

    def _shipping_csv(self, queryset):
        header = [
            _("redemption"),
            _("redeemed at"),
            _("member"),
            _("name"),
            _("e-mail"),
            _("phone"),
            _("reward"),
            _("shipping address"),
            _("fulfilment"),
        ]
        rows = (
            [
                r.pk,
                timezone.localtime(r.confirmed_at or r.created_at).isoformat(timespec="seconds"),
                r.member.public_id,
                f"{r.member.first_name} {r.member.last_name}".strip(),
                r.member.email,
                r.member.phone,
                r.reward.name if r.reward_id else "",
                r.shipping_address,
                r.fulfilment_status,
            ]
            for r in queryset.select_related("member", "reward")
            .order_by("created_at", "pk")
            .iterator(chunk_size=2000)
        )
        return _csv_response(f"to-ship-{timezone.localdate():%Y-%m-%d}.csv", header, rows)
