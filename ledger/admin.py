"""The ledger in the admin: read-only for everyone, plus the approval queue for adjustments.

No one (superusers included) adds, changes or deletes entries, accounts, lots or holds here:
points move only through ``ledger.services``. Staff request an adjustment with a reason; above
the approval threshold a second person approves or rejects it with the actions below.
"""

from django import forms
from django.contrib import admin, messages
from django.db.models import F
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from ledger import services
from ledger.models import (
    Account,
    AdjustmentRequest,
    Entry,
    Hold,
    Lot,
    PendingEarn,
    Purchase,
    PurchaseLine,
    Return,
)
from loyalty_site.errors import DomainError, form_error
from members.models import Member
from members.selectors import member_search

MEMBER_SEARCH = (
    "account__member__email",
    "account__member__last_name",
    "=account__member__external_id",
    "=account__member__cards__number",
)


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False
    list_per_page = 50

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("member", "balance", "held", "available_points", "pending", "updated_at")
    list_select_related = ("member",)
    search_fields = (
        "member__email",
        "member__last_name",
        "=member__external_id",
        "=member__cards__number",
    )
    readonly_fields = ("member", "balance", "held", "pending", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(available_sort=F("balance") - F("held"))

    @admin.display(description=_("available"), ordering="available_sort")
    def available_points(self, obj):
        return obj.available


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "member",
        "kind",
        "amount",
        "balance_after",
        "channel",
        "actor",
        "reference",
        "reason",
    )
    list_filter = ("kind", "channel")
    list_select_related = ("account__member", "actor")
    search_fields = (*MEMBER_SEARCH, "=reference")
    ordering = ("-created_at", "-id")

    @admin.display(description=_("member"), ordering="account__member")
    def member(self, obj):
        return obj.account.member


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    list_display = ("member", "points", "remaining", "earned_at", "expires_at", "expired_at")
    list_select_related = ("account__member",)
    search_fields = MEMBER_SEARCH
    ordering = ("-earned_at", "-id")

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.account.member


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "member",
        "points",
        "status",
        "channel",
        "reference",
        "expires_at",
    )
    list_filter = ("status",)
    list_select_related = ("account__member",)
    search_fields = (*MEMBER_SEARCH, "=reference")

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.account.member


@admin.register(PendingEarn)
class PendingEarnAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "member", "points", "status", "matures_at", "reference")
    list_filter = ("status",)
    list_select_related = ("account__member",)
    search_fields = (*MEMBER_SEARCH, "=reference")

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.account.member


class PurchaseLineInline(admin.TabularInline):
    model = PurchaseLine
    extra = 0
    can_delete = False
    fields = ("sku", "category", "quantity", "amount")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class ReturnInline(admin.TabularInline):
    model = Return
    extra = 0
    can_delete = False
    fields = ("external_id", "amount", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ("occurred_at", "member", "channel", "store", "external_id", "amount", "status")
    list_filter = ("status", "channel")
    list_select_related = ("member",)
    search_fields = ("member__email", "member__last_name", "=external_id")
    inlines = [PurchaseLineInline, ReturnInline]


class AdjustmentRequestForm(forms.ModelForm):
    member = forms.CharField(
        label=_("member"),
        help_text=_("E-mail, card number or customer number; it must find exactly one member."),
    )

    class Meta:
        model = AdjustmentRequest
        fields = ["points", "reason"]
        help_texts = {
            "points": _("Positive to credit, negative to debit."),
        }

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.result = None

    def clean_member(self):
        found = list(member_search(term=self.cleaned_data["member"])[:2])
        if len(found) != 1:
            raise forms.ValidationError(_("Give something that finds exactly one member."))
        return found[0]

    def clean(self):
        cleaned = super().clean()
        member: Member | None = cleaned.get("member")
        if member is None or self.errors:
            return cleaned
        try:
            self.result = services.points_adjust(
                member=member,
                points=cleaned.get("points") or 0,
                reason=cleaned.get("reason") or "",
                actor=self.user,
            )
        except DomainError as error:
            form_error(self, error)
        return cleaned


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(admin.ModelAdmin):
    """The approval queue: staff add a request, a second person approves or rejects it."""

    form = AdjustmentRequestForm
    list_display = (
        "requested_at",
        "member",
        "points",
        "reason",
        "status",
        "requested_by",
        "decided_by",
        "decided_at",
    )
    list_filter = ("status",)
    list_select_related = ("account__member", "requested_by", "decided_by")
    search_fields = MEMBER_SEARCH
    actions = ["approve", "reject"]
    show_full_result_count = False
    readonly_fields = (
        "account",
        "points",
        "reason",
        "status",
        "requested_by",
        "requested_at",
        "decided_by",
        "decided_at",
        "decision_reason",
        "entry",
    )

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ()

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["member", "points", "reason"]
        return list(self.readonly_fields)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class WithUser(form_class):
            def __init__(self, *args, **inner):
                super().__init__(*args, user=request.user, **inner)

        return WithUser

    def changelist_view(self, request, extra_context=None):
        # The queue opens on what is waiting.
        if not request.GET and request.method == "GET":
            return HttpResponseRedirect(f"{request.path}?status__exact=pending")
        return super().changelist_view(request, extra_context)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_approve_permission(self, request):
        return request.user.has_perm("ledger.approve_adjustmentrequest")

    def save_model(self, request, obj, form, change):
        # The service already wrote in form.clean(); point the admin at what it made.
        if isinstance(form.result, AdjustmentRequest):
            obj.pk = form.result.pk
        request._ledger_adjustment = form.result

    def save_related(self, request, form, formsets, change):
        pass

    def log_addition(self, request, obj, message):
        if obj.pk:
            return super().log_addition(request, obj, message)

    def response_add(self, request, obj, post_url_continue=None):
        result = request._ledger_adjustment
        if isinstance(result, Entry):
            self.message_user(
                request,
                _("%(points)+d points posted at once (within the approval threshold).")
                % {"points": result.amount},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("Adjustment of %(points)+d points waits for a second person's approval.")
                % {"points": result.points},
                messages.SUCCESS,
            )
        return HttpResponseRedirect(reverse("admin:ledger_adjustmentrequest_changelist"))

    @admin.display(description=_("member"), ordering="account__member")
    def member(self, obj):
        return obj.account.member

    def _decide(self, request, queryset, decide, done_message):
        done = 0
        for adjustment in queryset.select_related("account__member"):
            try:
                decide(request=adjustment, actor=request.user)
            except DomainError as error:
                self.message_user(
                    request, f"{adjustment.account.member}: {error.detail}", messages.ERROR
                )
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)

    @admin.action(description=_("Approve selected adjustments"), permissions=["approve"])
    def approve(self, request, queryset):
        self._decide(
            request,
            queryset,
            services.adjustment_approve,
            lambda n: ngettext("%d adjustment approved.", "%d adjustments approved.", n) % n,
        )

    @admin.action(description=_("Reject selected adjustments"), permissions=["approve"])
    def reject(self, request, queryset):
        self._decide(
            request,
            queryset,
            services.adjustment_reject,
            lambda n: ngettext("%d adjustment rejected.", "%d adjustments rejected.", n) % n,
        )
