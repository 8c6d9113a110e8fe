"""The ledger in the admin: read-only for everyone, plus the approval queue for adjustments.

No one (superusers included) adds, changes or deletes entries, accounts, lots or holds here:
points move only through ``ledger.services``. Staff request an adjustment with a reason; above
the approval threshold a second person approves or rejects it with the actions below.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import F, Q
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
from ledger.reasons import REASONS
from ledger.services.adjustments import adjustment_too_large
from loyalty_site.errors import DomainError, form_error
from members.admin_actions import rows_run
from members.admin_numbers import NumbersInRange
from members.admin_paginator import EstimatedCountPaginator
from members.busy import busy_retry
from members.selectors import member_ids_search, member_search

# A search finds the entries (lots, holds, purchases, ...) of at most this many members.
SEARCH_MEMBERS_MAX = 200
MEMBER_SEARCH_HELP = _(
    "Card number, e-mail, phone, external id or the start of a name (the member search), "
    "or an exact reference."
)


class MemberSearch:
    """The changelist's search box finds members the way the member admin does, then rows by
    member id.

    Django's own search would run ``%term%`` over the joined member table with DISTINCT (the
    cards join) and count the result: seconds on millions of entries. Here the member's indexed
    search (``members.selectors.member_ids_search``: card, e-mail, phone, external id, name
    prefix) finds at most SEARCH_MEMBERS_MAX members, and the rows are filtered by their ids,
    which the table's per-account (per-member) index answers; or by an exact reference.
    ``member_lookup`` is the path from the row to its member id: "account" rows are looked up by
    their account ids.
    """

    member_lookup = "account"
    exact_search_fields: tuple[str, ...] = ("reference",)
    search_help_text = MEMBER_SEARCH_HELP

    def get_search_results(self, request, queryset, search_term):
        term = " ".join(search_term.split())
        if not term:
            return queryset, False
        member_ids = member_ids_search(term, limit=SEARCH_MEMBERS_MAX)
        if self.member_lookup == "account":
            # Ids as a list, not a subquery: with the OR below a subquery would be a filter
            # applied to every row of the table, the list is a scan of the account index.
            account_ids = list(
                Account.objects.filter(member_id__in=member_ids).values_list("pk", flat=True)
            )
            query = Q(account_id__in=account_ids)
        else:
            query = Q(**{f"{self.member_lookup}__in": member_ids})
        return queryset.filter(query | self.exact_search_q(term)), False

    def exact_search_q(self, term: str) -> Q:
        """The rows the term names exactly (a reference), beside the members' rows."""
        query = Q(pk__in=[])
        for name in self.exact_search_fields:
            query |= Q(**{name: term})
        return query


class ChannelFilter(admin.SimpleListFilter):
    """The channel filter, its choices the API channels' names (``channel_names`` of the model
    admin, which the project's admin sets: channels live above the ledger). Django's default
    filter would read them with ``SELECT DISTINCT channel`` over the whole table on every view."""

    title = _("channel")
    parameter_name = "channel"

    def lookups(self, request, model_admin):
        return [(name, name) for name in model_admin.channel_names()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(channel=self.value())
        return queryset


class ReasonCodeFilter(admin.SimpleListFilter):
    """The reason codes of ``ledger.reasons``, instead of a DISTINCT over every entry."""

    title = _("reason code")
    parameter_name = "reason_code"

    def lookups(self, request, model_admin):
        return [(code, code) for code in REASONS]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(reason_code=self.value())
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    list_per_page = 50

    @staticmethod
    def channel_names() -> list[str]:
        # Replaced by loyalty_site.admin with the channels' names; without it, no filter.
        return []

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(MemberSearch, ReadOnlyAdmin):
    list_display = ("member", "balance", "held", "available_points", "pending", "updated_at")
    list_select_related = ("member",)
    # The box shows when search_fields is set; MemberSearch does the searching.
    search_fields = ("member__email",)
    member_lookup = "member_id"
    exact_search_fields = ()
    readonly_fields = ("member", "balance", "held", "pending", "created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(available_sort=F("balance") - F("held"))

    @admin.display(description=_("available"), ordering="available_sort")
    def available_points(self, obj):
        return obj.available


@admin.register(Entry)
class EntryAdmin(MemberSearch, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "member",
        "kind",
        "amount",
        "balance_after",
        "channel",
        "actor",
        "reference",
        "reason_shown",
    )
    list_filter = ("kind", ChannelFilter, ReasonCodeFilter)
    list_select_related = ("account__member", "actor")
    search_fields = ("=reference",)
    ordering = ("-created_at", "-id")
    # Only the column an index orders: on millions of rows a sort by any other column reads
    # and sorts the whole table for one page (seconds).
    sortable_by = ("created_at",)
    # The detail page: the reason rendered in the reader's language instead of the raw columns.
    fields = (
        "created_at",
        "account",
        "kind",
        "amount",
        "balance_after",
        "channel",
        "actor",
        "reference",
        "reason_shown",
        "reason_code",
        "refers_to",
        "purchase",
        "explanation",
    )
    readonly_fields = fields

    @admin.display(description=_("member"), ordering="account__member")
    def member(self, obj):
        return obj.account.member

    @admin.display(description=_("reason"))
    def reason_shown(self, obj):
        return obj.reason_text


@admin.register(Lot)
class LotAdmin(MemberSearch, ReadOnlyAdmin):
    list_display = ("member", "points", "remaining", "earned_at", "expires_at", "expired_at")
    list_select_related = ("account__member",)
    search_fields = ("account__member__email",)
    exact_search_fields = ()
    # Newest first by id, which the primary key orders: only the open lots have an index by
    # earned_at (lot_open_fifo), so "-earned_at" sorted every lot of the table for a page (6 s
    # on 2.5 M lots). A lot is made with its earn entry, so ids follow the earns. No column
    # sorts (see EntryAdmin.sortable_by).
    ordering = ("-id",)
    sortable_by = ()

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.account.member


@admin.register(Hold)
class HoldAdmin(MemberSearch, ReadOnlyAdmin):
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
    search_fields = ("=reference",)

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.account.member


@admin.register(PendingEarn)
class PendingEarnAdmin(MemberSearch, ReadOnlyAdmin):
    list_display = (
        "created_at",
        "member",
        "points",
        "status",
        "matures_at",
        "reference",
        "reason_shown",
    )
    list_filter = ("status",)
    list_select_related = ("account__member",)
    search_fields = ("=reference",)
    exclude = ("reason", "reason_params")
    readonly_fields = ("reason_shown",)

    @admin.display(description=_("member"))
    def member(self, obj):
        return obj.account.member

    @admin.display(description=_("reason"))
    def reason_shown(self, obj):
        return obj.reason_text


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
class PurchaseAdmin(MemberSearch, ReadOnlyAdmin):
    list_display = ("occurred_at", "member", "channel", "store", "external_id", "amount", "status")
    list_filter = ("status", ChannelFilter)
    list_select_related = ("member",)
    search_fields = ("=external_id",)
    member_lookup = "member_id"
    # The column an index orders (purchase_occurred; see EntryAdmin.sortable_by).
    sortable_by = ("occurred_at",)
    search_help_text = _(
        "Card number, e-mail, phone, external id or the start of a name (the member search), "
        "or a purchase's exact external id."
    )

    def exact_search_q(self, term: str) -> Q:
        # The external id is unique per channel (purchase_channel_external_id): naming the
        # channels lets that index answer; external_id alone would scan every purchase.
        return Q(channel__in=self.channel_names(), external_id=term)

    inlines = [PurchaseLineInline, ReturnInline]


class AdjustmentRequestForm(forms.ModelForm):
    """Checks the input only; the admin's save_model asks the service (which may still refuse)."""

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

    def __init__(self, *args, refusal: DomainError | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refusal = refusal

    def clean_member(self):
        found = list(member_search(term=self.cleaned_data["member"])[:2])
        if len(found) != 1:
            raise forms.ValidationError(_("Give something that finds exactly one member."))
        return found[0]

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("The adjustment must be a whole number other than zero."))
        if abs(points) > settings.LOYALTY_ADJUSTMENT_MAX_POINTS:
            raise forms.ValidationError(adjustment_too_large())
        return points

    def clean(self):
        cleaned = super().clean()
        if self.refusal is not None:
            form_error(self, self.refusal)
        return cleaned


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(MemberSearch, NumbersInRange, admin.ModelAdmin):
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
    search_fields = ("account__member__email",)
    exact_search_fields = ()
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
        form_class = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "_ledger_adjustment_refusal", None)
        if obj is not None or refusal is None:
            return form_class

        class Refused(form_class):
            def __init__(self, *args, **inner):
                super().__init__(*args, refusal=refusal, **inner)

        return Refused

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            # The whole view is run again when the database picks its transaction as a
            # deadlock's victim (it rolled back whole); losing every time is WriteBusy, a
            # refusal like the others below: the form comes back with "try again", not a 500.
            return busy_retry(
                lambda: super(AdjustmentRequestAdmin, self).changeform_view(
                    request, object_id, form_url, extra_context
                )
            )
        except DomainError as refusal:
            if request.method != "POST" or object_id is not None:
                raise
            # The form was valid, but the service refused in save_model (e.g. a debit larger
            # than the balance, which only the locked account can tell). changeform_view's
            # transaction has rolled back, so nothing is written; the page is rendered again the
            # way Django renders any invalid form, with the refusal on it.
            request._ledger_adjustment_refusal = refusal
            return super().changeform_view(request, object_id, form_url, extra_context)

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
        # The one write: within the approval threshold the service posts an entry at once,
        # above it it queues a request; either way the admin shows what it made (response_add).
        result = services.points_adjust(
            member=form.cleaned_data["member"],
            points=form.cleaned_data["points"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        )
        if isinstance(result, AdjustmentRequest):
            obj.pk = result.pk
        request._ledger_adjustment = result

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

    @admin.action(description=_("Approve selected adjustments"), permissions=["approve"])
    def approve(self, request, queryset):
        rows_run(
            self,
            request,
            queryset.select_related("account__member"),
            lambda adjustment: services.adjustment_approve(request=adjustment, actor=request.user),
            done=lambda n: ngettext("%d adjustment approved.", "%d adjustments approved.", n) % n,
            label=lambda adjustment: str(adjustment.account.member),
        )

    @admin.action(description=_("Reject selected adjustments"), permissions=["approve"])
    def reject(self, request, queryset):
        rows_run(
            self,
            request,
            queryset.select_related("account__member"),
            lambda adjustment: services.adjustment_reject(request=adjustment, actor=request.user),
            done=lambda n: ngettext("%d adjustment rejected.", "%d adjustments rejected.", n) % n,
            label=lambda adjustment: str(adjustment.account.member),
        )
