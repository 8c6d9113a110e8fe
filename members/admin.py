from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from members.admin_actions import rows_run
from members.admin_numbers import NumbersInRange
from members.admin_paginator import EstimatedCountPaginator
from members.change_reason import ChangeReasonAdmin
from members.errors import InvalidEmail, InvalidPhone, MemberErased
from members.models import AuditEntry, Card, Consent, Member, Tier, TierHistory
from members.normalise import birth_date_refusal, email_normalise, phone_normalise
from members.selectors import member_search
from members.services import (
    UPDATABLE_FIELDS,
    card_block,
    card_replace,
    member_enrol,
    member_update,
)


class MemberForm(forms.ModelForm):
    class Meta:
        model = Member
        fields = [
            "external_id",
            "first_name",
            "last_name",
            "email",
            "phone",
            "birth_date",
            "locale",
            "status",
            "profile",
        ]

    def clean_email(self):
        try:
            return email_normalise(self.cleaned_data.get("email") or "")
        except InvalidEmail as error:
            raise forms.ValidationError(error.detail) from None

    def clean_birth_date(self):
        birth_date = self.cleaned_data.get("birth_date")
        refusal = birth_date_refusal(birth_date, today=timezone.localdate())
        if refusal:
            raise forms.ValidationError(refusal)
        return birth_date

    def clean_phone(self):
        try:
            return phone_normalise(str(self.cleaned_data.get("phone") or ""))
        except InvalidPhone as error:
            raise forms.ValidationError(error.detail) from None

    def clean(self):
        # member_update refuses an erased member; say so on the form instead of failing later.
        if self.instance.pk and self.instance.status == Member.Status.ERASED:
            raise forms.ValidationError(MemberErased.default_detail)
        return super().clean()

    def clean_status(self):
        status = self.cleaned_data.get("status")
        if status == Member.Status.ERASED and (self.instance.status != Member.Status.ERASED):
            raise forms.ValidationError(_("Use the erase action to erase a member."))
        return status


class CardInline(admin.TabularInline):
    model = Card
    fk_name = "member"
    extra = 0
    fields = ("number", "status", "issued_at", "status_changed_at", "replaced_by")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class ConsentInline(admin.TabularInline):
    model = Consent
    extra = 0
    fields = ("purpose", "action", "at", "channel", "wording_version", "actor")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


class TierHistoryInline(admin.TabularInline):
    model = TierHistory
    extra = 0
    fields = ("at", "from_tier", "to_tier", "reason", "qualifying_points", "note", "actor")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    """Search, profile edits and cards. The data export, erasure and import reach into every app,
    which members may not import: the project adds them to this admin at the top."""

    form = MemberForm
    list_display = ("__str__", "email", "phone", "external_id", "tier", "status", "enrolled_at")
    list_filter = ("status", "tier")
    list_select_related = ("tier",)
    # One box for card number, e-mail, phone, external id and name (see get_search_results).
    search_fields = ("last_name",)
    search_help_text = _(
        "Card number, e-mail, phone, external id, or the start of a first or last name."
    )
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    # As the ledger's lists: rendering a row (its action box, its cells) is most of the page's
    # time, Django's default of 100 rows took about 200 ms on a loaded machine.
    list_per_page = 50
    readonly_fields = (
        "public_id",
        "tier",
        "tier_since",
        "tier_below_since",
        "enrolled_at",
        "enrolled_channel",
        # Kept by the engagement service from survey answers, never typed in.
        "nps_score",
        "nps_at",
    )
    inlines = [CardInline, ConsentInline, TierHistoryInline]

    # --- search: exact or prefix matches on indexed expressions only ---
    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return member_search(term=search_term, members=queryset), False

    # --- edits go through the services, which audit staff changes ---
    def save_model(self, request, obj, form, change):
        if not change:
            created = member_enrol(
                email=obj.email,
                first_name=obj.first_name,
                last_name=obj.last_name,
                external_id=obj.external_id,
                phone=str(obj.phone or ""),
                birth_date=obj.birth_date,
                locale=obj.locale,
                profile=obj.profile,
                channel="admin",
                actor=request.user,
            )
            obj.pk, obj.public_id = created.pk, created.public_id
            obj._state.adding = False
            return
        changes = {
            name: form.cleaned_data[name] for name in form.changed_data if name in UPDATABLE_FIELDS
        }
        if changes:
            member_update(member=obj, actor=request.user, reason="admin edit", **changes)

    def has_delete_permission(self, request, obj=None):
        # Members are never deleted: the ledger refers to them. Erase instead.
        return False


@admin.register(Card)
class CardAdmin(admin.ModelAdmin):
    list_display = ("number", "member", "status", "issued_at", "status_changed_at")
    list_filter = ("status",)
    list_select_related = ("member",)
    raw_id_fields = ("member", "replaced_by")
    search_fields = ("=number",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    readonly_fields = (
        "number",
        "member",
        "status",
        "issued_at",
        "status_changed_at",
        "replaced_by",
    )
    actions = ["block_selected", "replace_selected"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Block selected cards"), permissions=["change"])
    def block_selected(self, request, queryset):
        rows_run(
            self,
            request,
            queryset,
            lambda card: card_block(card=card, actor=request.user, reason="admin action"),
            done=lambda n: (
                ngettext("%(count)d card blocked.", "%(count)d cards blocked.", n) % {"count": n}
            ),
        )

    @admin.action(
        description=_("Replace selected cards (new card, same member)"), permissions=["change"]
    )
    def replace_selected(self, request, queryset):
        rows_run(
            self,
            request,
            queryset,
            lambda card: card_replace(card=card, actor=request.user, reason="admin action"),
            done=lambda n: (
                ngettext("%(count)d card replaced.", "%(count)d cards replaced.", n) % {"count": n}
            ),
        )


@admin.register(Tier)
class TierAdmin(ChangeReasonAdmin, NumbersInRange, admin.ModelAdmin):
    list_display = (
        "name",
        "rank",
        "threshold",
        "window_months",
        "earn_multiplier",
        "downgrade_grace_days",
    )
    ordering = ("rank",)


@admin.register(TierHistory)
class TierHistoryAdmin(admin.ModelAdmin):
    list_display = ("at", "member", "from_tier", "to_tier", "reason", "qualifying_points")
    list_filter = ("reason", "to_tier")
    list_select_related = ("member", "from_tier", "to_tier")
    raw_id_fields = ("member",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Consent)
class ConsentAdmin(admin.ModelAdmin):
    list_display = ("at", "member", "purpose", "action", "channel", "wording_version")
    list_filter = ("purpose", "action", "channel")
    list_select_related = ("member",)
    raw_id_fields = ("member",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("at", "actor", "action", "member", "reason")
    list_filter = ("action",)
    list_select_related = ("actor", "member")
    raw_id_fields = ("member",)
    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
