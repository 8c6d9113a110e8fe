import json
from datetime import datetime, time, timedelta

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campaigns import conditions, segments, services, tasks
from campaigns.forms import SimulationPeriodForm
from campaigns.message_rendering import message_preview
from campaigns.models import (
    AbuseRule,
    Badge,
    Campaign,
    CampaignMemberUsage,
    CampaignMessage,
    CampaignOffer,
    CampaignResult,
    CampaignTransition,
    Challenge,
    ChallengeProgress,
    EarningAward,
    EarningRule,
    EngagementEvent,
    EngagementKind,
    FrequencyCap,
    MemberBadge,
    MessageTemplate,
    PurchasePoints,
    PurchaseReview,
    Referral,
    ReferralCode,
    Segment,
    SegmentSnapshot,
    SegmentSnapshotMember,
)
from campaigns.results import campaign_results
from campaigns.services import lifecycle
from campaigns.simulator import campaign_simulate, simulate
from loyalty_site.errors import DomainError, form_error
from members.admin_actions import rows_run
from members.admin_numbers import NumbersInRange
from members.admin_paginator import EstimatedCountPaginator
from members.change_reason import FIELD as CHANGE_REASON
from members.change_reason import ChangeReasonAdmin, change_reason
from members.models import Member


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the services: staff look, the services write. Some hold a row per
    purchase (millions): no count of the whole table on a page view."""

    show_full_result_count = False
    paginator = EstimatedCountPaginator

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceRefusalAdmin:
    """Admin mixin (put it first): a service's refusal (DomainError) in save_model or
    delete_model shows on the page instead of a 500.

    changeform_view runs in a transaction, so the refusal rolled everything back; the form is
    then rendered again like an invalid one, with the refusal on its fields (form_error).
    """

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        refusal = getattr(request, "_service_refusal", None)
        if refusal is None:
            return form_class

        class Refused(form_class):
            def clean(self):
                cleaned = super().clean()
                form_error(self, refusal)
                return cleaned

        return Refused

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except DomainError as refusal:
            if request.method != "POST":
                raise
            request._service_refusal = refusal
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except DomainError as refusal:
            self.message_user(request, refusal.detail, messages.ERROR)
            info = self.opts.app_label, self.opts.model_name
            return redirect(reverse("admin:{}_{}_change".format(*info), args=[object_id]))


class NamesField(forms.CharField):
    """SKUs, categories, stores or channels: one per line or separated by commas."""

    widget = forms.Textarea(attrs={"rows": 2})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", _("One per line or separated by commas; empty means any."))
        super().__init__(**kwargs)

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list | tuple) else value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        names = [name.strip() for name in text.replace(",", "\n").splitlines()]
        return list(dict.fromkeys(name for name in names if name))


class EarningRuleForm(forms.ModelForm):
    skus = NamesField(label=_("SKUs"))
    categories = NamesField(label=capfirst(_("categories")))
    stores = NamesField(label=capfirst(_("stores")))
    channels = NamesField(label=capfirst(_("channels")))
    days_of_week = forms.TypedMultipleChoiceField(
        label=capfirst(_("days of week")),
        choices=conditions.WEEKDAYS,
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked means any day."),
    )

    class Meta:
        model = EarningRule
        # The admin's fieldsets choose what is shown; these are the conditions it cleans.
        fields = ["skus", "categories", "stores", "channels", "days_of_week"]


class SimulationForm(SimulationPeriodForm):
    rules = forms.ModelMultipleChoiceField(
        label=_("Rules"),
        queryset=EarningRule.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The rules to replay, active or not, exactly as they are set now."),
    )


@admin.register(EarningRule)
class EarningRuleAdmin(ServiceRefusalAdmin, ChangeReasonAdmin, NumbersInRange, admin.ModelAdmin):
    """Earning rules, saved and deleted through the rule service, as the /rules/ editor saves
    them (campaigns.services.rules): it refuses a rule of a campaign that is no longer a draft,
    audits the change and makes the earn path drop its cached rules. Such a rule is read-only
    here, with a message saying why."""

    form = EarningRuleForm
    list_display = [
        "name",
        "kind",
        "active",
        "priority",
        "stacks",
        "starts_at",
        "ends_at",
        "budget_points",
        "budget_spent",
    ]
    list_filter = ["active", "kind", "stacks"]
    search_fields = ["name"]
    filter_horizontal = ["tiers", "segments"]
    readonly_fields = ["budget_spent", "created_at"]
    actions = ["simulate_selected"]
    fieldsets = [
        (None, {"fields": ["name", "description", "campaign", "active", "priority", "stacks"]}),
        (
            _("Points"),
            {"fields": ["kind", "rate", "multiplier", "bonus_points", "rounding"]},
        ),
        (
            _("Conditions (empty means any)"),
            {
                "fields": [
                    "skus",
                    "categories",
                    "stores",
                    "channels",
                    "tiers",
                    "segments",
                    "days_of_week",
                    ("time_from", "time_until"),
                    ("starts_at", "ends_at"),
                    "min_spend",
                    "first_purchase_only",
                    "birthday",
                    "anniversary",
                ]
            },
        ),
        (
            _("Caps and budget"),
            {
                "fields": [
                    "cap_per_purchase",
                    ("cap_per_member", "cap_period"),
                    ("budget_points", "budget_spent"),
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("campaign")

    def has_change_permission(self, request, obj=None):
        if obj is not None and not services.rule_editable(obj):
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and not services.rule_editable(obj):
            return False
        return super().has_delete_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not services.rule_editable(obj):
            self.message_user(
                request,
                _(
                    "This rule belongs to the campaign “%(campaign)s”, which is no longer a "
                    "draft: its rules cannot be changed."
                )
                % {"campaign": obj.campaign.name},
                messages.WARNING,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get(CHANGE_REASON, "")
        with change_reason(reason):
            services.rule_save(
                rule=obj,
                actor=request.user,
                reason=reason,
                tiers=form.cleaned_data.get("tiers"),
                segments=form.cleaned_data.get("segments"),
            )

    def save_related(self, request, form, formsets, change):
        # rule_save set the tiers and segments with the rule, in its transaction and audit
        # entry: the form's own save_m2m would write them a second time.
        with change_reason(form.cleaned_data.get(CHANGE_REASON, "")):
            for formset in formsets:
                self.save_formset(request, form, formset, change=change)

    def delete_model(self, request, obj):
        services.rule_delete(rule=obj, actor=request.user)

    def delete_queryset(self, request, queryset):
        # The "delete selected" action (which says how many it deleted): each rule through the
        # service, in its own transaction; a refusal is named per rule.
        for rule in queryset.select_related("campaign"):
            try:
                services.rule_delete(rule=rule, actor=request.user)
            except DomainError as refusal:
                self.message_user(request, f"{rule}: {refusal.detail}", messages.ERROR)

    def get_urls(self):
        return [
            path(
                "simulate/",
                self.admin_site.admin_view(self.simulate_view),
                name="campaigns_earningrule_simulate",
            )
        ] + super().get_urls()

    @admin.action(description=_("Simulate the selected rules on the last 12 months"))
    def simulate_selected(self, request, queryset):
        ids = ",".join(str(pk) for pk in queryset.values_list("pk", flat=True))
        return redirect(f"{reverse('admin:campaigns_earningrule_simulate')}?rules={ids}")

    def simulate_view(self, request):
        if not request.user.has_perm("campaigns.simulate_earningrule"):
            raise PermissionDenied
        today = timezone.localdate()
        initial = {
            "start": today - timedelta(days=365),
            "end": today - timedelta(days=1),
            "rules": [int(v) for v in request.GET.get("rules", "").split(",") if v.isdigit()],
        }
        form = SimulationForm(request.POST or None, initial=initial)
        report = None
        if request.method == "POST" and form.is_valid():
            tz = timezone.get_current_timezone()
            start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=tz)
            end = datetime.combine(
                form.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=tz
            )
            report = simulate(
                start=start,
                end=end,
                rules=list(form.cleaned_data["rules"].prefetch_related("tiers", "segments")),
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Simulate earning rules"),
            "form": form,
            "report": report,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "campaigns/simulation.html", context)


@admin.register(EarningAward)
class EarningAwardAdmin(ReadOnlyAdmin):
    list_display = ["rule", "member", "purchase", "points", "occurred_at"]
    list_select_related = ["rule", "member", "purchase"]
    raw_id_fields = ["member", "purchase"]
    list_filter = ["rule"]
    show_full_result_count = False


@admin.register(PurchasePoints)
class PurchasePointsAdmin(ReadOnlyAdmin):
    list_display = ["purchase", "points", "points_reversed"]
    list_select_related = ["purchase"]
    raw_id_fields = ["purchase"]
    show_full_result_count = False


@admin.register(PurchaseReview)
class PurchaseReviewAdmin(ReadOnlyAdmin):
    list_display = ["purchase", "member", "reason", "points", "status", "created_at", "decided_by"]
    list_filter = ["status"]
    list_select_related = ["purchase", "member", "decided_by"]
    search_fields = ["purchase__external_id", "member__email"]
    raw_id_fields = ["purchase", "member"]
    show_full_result_count = False
    actions = ["approve", "reject"]

    def has_change_permission(self, request, obj=None):
        # Actions need the change permission; the form itself stays read-only.
        return request.user.has_perm("campaigns.change_purchasereview") and obj is None

    @admin.action(description=_("Approve: post the held points"))
    def approve(self, request, queryset):
        rows_run(
            self,
            request,
            queryset.filter(status=PurchaseReview.Status.OPEN),
            lambda review: services.purchase_review_approve(review=review, actor=request.user),
            done=lambda n: (
                ngettext("%(n)d purchase approved.", "%(n)d purchases approved.", n) % {"n": n}
            ),
        )

    @admin.action(description=_("Reject: void the held points"))
    def reject(self, request, queryset):
        rows_run(
            self,
            request,
            queryset.filter(status=PurchaseReview.Status.OPEN),
            lambda review: services.purchase_review_reject(review=review, actor=request.user),
            done=lambda n: (
                ngettext("%(n)d purchase rejected.", "%(n)d purchases rejected.", n) % {"n": n}
            ),
        )


@admin.register(AbuseRule)
class AbuseRuleAdmin(ChangeReasonAdmin, NumbersInRange, admin.ModelAdmin):
    list_display = ["kind", "threshold", "min_history", "active"]
    list_filter = ["active", "kind"]


@admin.register(EngagementKind)
class EngagementKindAdmin(ChangeReasonAdmin, NumbersInRange, admin.ModelAdmin):
    list_display = [
        "code",
        "name",
        "points",
        "limit_count",
        "limit_period",
        "requires_approval",
        "collects_nps",
    ]
    list_filter = ["active", "requires_approval", "collects_nps"]
    search_fields = ["code", "name"]


@admin.register(EngagementEvent)
class EngagementEventAdmin(ReadOnlyAdmin):
    list_display = [
        "created_at",
        "member",
        "kind",
        "reference",
        "status",
        "points",
        "score",
        "decided_by",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["member", "kind", "decided_by"]
    search_fields = ["reference", "member__email"]
    raw_id_fields = ["member"]
    show_full_result_count = False
    actions = ["approve", "reject"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("campaigns.change_engagementevent") and obj is None

    @admin.action(description=_("Approve and credit the points"))
    def approve(self, request, queryset):
        rows_run(
            self,
            request,
            queryset.filter(status=EngagementEvent.Status.PENDING),
            lambda event: services.event_approve(event=event, actor=request.user),
            done=lambda n: (
                ngettext("%(n)d event approved.", "%(n)d events approved.", n) % {"n": n}
            ),
        )

    @admin.action(description=_("Reject"))
    def reject(self, request, queryset):
        rows_run(
            self,
            request,
            queryset.filter(status=EngagementEvent.Status.PENDING),
            lambda event: services.event_reject(event=event, actor=request.user),
            done=lambda n: (
                ngettext("%(n)d event rejected.", "%(n)d events rejected.", n) % {"n": n}
            ),
        )


@admin.register(ReferralCode)
class ReferralCodeAdmin(ReadOnlyAdmin):
    list_display = ["code", "member", "created_at"]
    list_select_related = ["member"]
    search_fields = ["code", "member__email"]
    raw_id_fields = ["member"]


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ["referrer", "referred", "created_at", "rewarded_at"]
    list_select_related = ["referrer", "referred"]
    raw_id_fields = ["referrer", "referred", "purchase"]
    show_full_result_count = False


@admin.register(Badge)
class BadgeAdmin(ChangeReasonAdmin, admin.ModelAdmin):
    list_display = ["code", "name"]
    search_fields = ["code", "name"]


@admin.register(MemberBadge)
class MemberBadgeAdmin(ReadOnlyAdmin):
    list_display = ["member", "badge", "awarded_at"]
    list_select_related = ["member", "badge"]
    list_filter = ["badge"]
    raw_id_fields = ["member"]
    show_full_result_count = False


@admin.register(Challenge)
class ChallengeAdmin(ChangeReasonAdmin, NumbersInRange, admin.ModelAdmin):
    list_display = ["name", "goal", "target", "window_days", "reward_points", "badge", "active"]
    list_filter = ["active", "goal"]
    list_select_related = ["badge"]
    search_fields = ["name"]


@admin.register(ChallengeProgress)
class ChallengeProgressAdmin(ReadOnlyAdmin):
    list_display = ["challenge", "member", "value", "window_start", "completed_at"]
    list_select_related = ["challenge", "member"]
    list_filter = ["challenge"]
    raw_id_fields = ["member"]
    show_full_result_count = False


# --- Campaign messages: templates, planned messages, frequency caps (campaigns.services.sends) ---


class MessageTemplateInline(admin.StackedInline):
    model = MessageTemplate
    extra = 0
    fields = ["channel", "language", "subject", "body", "html_body"]


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ChangeReasonAdmin, admin.ModelAdmin):
    list_display = ["campaign", "channel", "language", "subject", "updated_at"]
    list_filter = ["channel", "language"]
    list_select_related = ["campaign"]
    search_fields = ["campaign__name", "subject"]
    raw_id_fields = ["campaign"]
    readonly_fields = ["preview"]

    @admin.display(description=_("Preview"))
    def preview(self, obj):
        """The saved template rendered for one member: of the audience, else the first one."""
        if obj is None or obj.pk is None:
            return _("Save the template to see it for a member.")
        member_id = (
            SegmentSnapshotMember.objects.filter(snapshot_id=obj.campaign.audience_id)
            .order_by("member_id")
            .values_list("member_id", flat=True)
            .first()
        )
        members = Member.objects.filter(status=Member.Status.ACTIVE).order_by("pk")
        member = members.filter(pk=member_id).first() or members.first()
        if member is None:
            return _("No member to show it for.")
        message = message_preview(
            campaign=obj.campaign, channel=obj.channel, member=member, language=obj.language
        )
        return format_html(
            "<p>{}</p><p><strong>{}</strong></p><pre>{}</pre>",
            _("For member %(id)s:") % {"id": member.pk},
            message.subject,
            message.body,
        )


@admin.register(CampaignMessage)
class CampaignMessageAdmin(ReadOnlyAdmin):
    list_display = [
        "planned_at",
        "campaign",
        "member",
        "channel",
        "status",
        "suppression",
        "attempts",
        "sent_at",
    ]
    list_filter = ["status", "channel", "suppression", "campaign"]
    list_select_related = ["campaign", "member"]
    search_fields = ["member__email", "provider_id"]
    raw_id_fields = ["member", "campaign"]
    show_full_result_count = False
    readonly_fields = ["lease_token"]


@admin.register(FrequencyCap)
class FrequencyCapAdmin(ChangeReasonAdmin, NumbersInRange, admin.ModelAdmin):
    list_display = ["__str__", "channel", "max_messages", "period", "unit", "active"]
    list_editable = ["active"]
    list_filter = ["channel", "active"]


# -- segments (issue 13: segment definitions, live counts, snapshots) ------------------------


class SegmentDefinitionField(forms.JSONField):
    """The definition as indented JSON, validated as a segment tree (naming the problem)."""

    widget = forms.Textarea(attrs={"rows": 18, "cols": 90, "class": "vLargeTextField"})

    def prepare_value(self, value):
        if isinstance(value, str):  # the text of a form sent back with errors
            return value
        return json.dumps(value, indent=2, ensure_ascii=False)


class SegmentForm(forms.ModelForm):
    definition = SegmentDefinitionField(
        label=capfirst(_("definition")),
        help_text=_(
            'A tree of groups {"all": [...]}, {"any": [...]}, {"not": {...}} and conditions '
            '{"condition": name, ...}; see the README, "Campaigns and segments".'
        ),
    )

    class Meta:
        model = Segment
        fields = ["name", "description", "definition"]

    def clean_definition(self):
        definition = self.cleaned_data["definition"]
        segments.validate(definition, segment_id=self.instance.pk)
        return definition


@admin.register(Segment)
class SegmentAdmin(ChangeReasonAdmin, admin.ModelAdmin):
    form = SegmentForm
    # No live count in the list: each would be a query over every member.
    list_display = ["name", "description", "created_by", "updated_at"]
    list_select_related = ["created_by"]
    search_fields = ["name", "description"]
    readonly_fields = ["members_now", "reachable_now", "created_by", "created_at", "updated_at"]
    fields = [
        "name",
        "description",
        "definition",
        "members_now",
        "reachable_now",
        "created_by",
        "created_at",
        "updated_at",
    ]
    actions = ["snapshot_take"]

    @admin.display(description=_("members now"))
    def members_now(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        try:
            count = segments.segment_count(obj)
            basis = segments.segment_rfm_basis(obj)
        except ValidationError as exc:  # a definition saved around validation
            return "; ".join(exc.messages)
        if basis is None:
            return count
        if basis.scored_at is None:
            return _("%(count)s (RFM ranked now from the purchases)") % {"count": count}
        return _("%(count)s (RFM from the nightly scores of %(at)s)") % {
            "count": count,
            "at": date_format(timezone.localtime(basis.scored_at), "SHORT_DATETIME_FORMAT"),
        }

    @admin.display(description=_("reachable now"))
    def reachable_now(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        try:
            reach = segments.segment_reachable(obj)
        except ValidationError as exc:
            return "; ".join(exc.messages)
        return _("e-mail %(email)s, SMS %(sms)s, push %(push)s") % reach

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    # Deleting a segment that limits an earning rule would silently widen the rule to every
    # member (an empty list of segments means "any"): such a segment is kept until no rule
    # names it, also when it is one of several chosen for "Delete selected". (A segment another
    # segment refers to may go: the reference then selects nobody.)
    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.earning_rules.exists():
            return False
        return super().has_delete_permission(request, obj)

    @admin.action(description=_("Freeze into a snapshot"), permissions=["snapshot"])
    def snapshot_take(self, request, queryset):
        rows_run(
            self,
            request,
            queryset,
            lambda segment: services.segment_snapshot_take(
                definition=segment.definition, segment=segment
            ),
            done=lambda count: (
                ngettext("%(count)d snapshot taken.", "%(count)d snapshots taken.", count)
                % {"count": count}
            ),
        )

    def has_snapshot_permission(self, request):
        return request.user.has_perm("campaigns.add_segmentsnapshot")


@admin.register(SegmentSnapshot)
class SegmentSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["segment", "taken_at", "size"]
    list_select_related = ["segment"]
    list_filter = ["segment"]
    readonly_fields = ["segment", "taken_at", "size", "definition_pretty"]
    fields = readonly_fields
    show_full_result_count = False

    @admin.display(description=_("definition"))
    def definition_pretty(self, obj):
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.definition, indent=2, ensure_ascii=False)
        )


# -- campaigns: lifecycle, budgets, simulation (issue 13) --------------------------------------


class CampaignOfferInline(admin.TabularInline):
    model = CampaignOffer
    fields = ["priority", "rule", "category", "days", "reward"]
    autocomplete_fields = ["reward"]
    extra = 0


class CampaignEarningRuleInline(admin.TabularInline):
    """An earning campaign's rules; their conditions and caps are edited on the rule's page."""

    model = EarningRule
    fields = ["name", "kind", "rate", "multiplier", "bonus_points", "priority", "stacks", "active"]
    extra = 0
    show_change_link = True

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == Campaign.Status.DRAFT

    def has_add_permission(self, request, obj=None):
        return self._draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._draft(obj) and super().has_delete_permission(request, obj)


class CampaignTransitionInline(admin.TabularInline):
    model = CampaignTransition
    fields = ["at", "from_status", "to_status", "actor", "reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["-at", "-id"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = sorted(lifecycle.DRAFT_FIELDS)


class TransitionForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=255, required=False)


TRANSITION_SERVICES = {
    "schedule": services.campaign_schedule,
    "unschedule": services.campaign_unschedule,
    "activate": services.campaign_activate,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "end": services.campaign_end,
    "archive": services.campaign_archive,
}


@admin.register(Campaign)
class CampaignAdmin(ServiceRefusalAdmin, NumbersInRange, admin.ModelAdmin):
    """Campaigns: edited as far as their status allows, moved by the buttons on their page.

    Every save of an existing campaign and every button goes through a service
    (campaigns.services.lifecycle), which locks the row, refuses what the status does not
    allow and records a transition with the reason.
    """

    form = CampaignForm
    change_form_template = "campaigns/campaign_change_form.html"
    list_display = [
        "name",
        "kind",
        "status",
        "segment",
        "starts_at",
        "ends_at",
        "control_basis_points",
        "budget_points",
        "points_spent",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["segment"]
    search_fields = ["name"]
    inlines = [
        CampaignEarningRuleInline,
        CampaignOfferInline,
        MessageTemplateInline,
        CampaignTransitionInline,
    ]
    actions = ["simulate_selected"]
    fieldsets = [
        (None, {"fields": ["name", "description", "kind", "status", "segment"]}),
        (_("Period"), {"fields": [("starts_at", "ends_at")]}),
        (
            _("Control group and messages"),
            {"fields": ["control_basis_points", "salt", "frequency_capped", "audience"]},
        ),
        (
            _("Budget caps"),
            {
                "fields": [
                    ("budget_points", "budget_money"),
                    ("member_cap_points", "member_cap_period"),
                    ("points_spent", "money_spent", "point_value"),
                ],
                "description": _(
                    "Earning campaigns: issuance stops exactly at the budget, in points or its "
                    "money value, and at the cap per member; a return gives budget back."
                ),
            },
        ),
        (_("History"), {"fields": ["created_by", "created_at"]}),
    ]
    ALWAYS_READ_ONLY = [
        "status",
        "salt",
        "audience",
        "points_spent",
        "money_spent",
        "point_value",
        "created_by",
        "created_at",
    ]

    @admin.display(description=_("money spent"))
    def money_spent(self, obj):
        return f"{obj.money_spent} {settings.LOYALTY_CURRENCY}"

    def get_readonly_fields(self, request, obj=None):
        if obj is None or obj.status == Campaign.Status.DRAFT:
            editable = lifecycle.DRAFT_FIELDS
        elif obj.status in (Campaign.Status.ACTIVE, Campaign.Status.PAUSED):
            editable = lifecycle.RUNNING_FIELDS
        else:
            editable = lifecycle.FREE_FIELDS
        others = [f for f in lifecycle.DRAFT_FIELDS if f not in editable]
        return [*self.ALWAYS_READ_ONLY, *sorted(others)]

    def get_inlines(self, request, obj):
        if obj is None:
            return self.inlines
        by_kind = {
            Campaign.Kind.EARNING: CampaignEarningRuleInline,
            Campaign.Kind.OFFER: CampaignOfferInline,
        }
        return [
            inline
            for inline in self.inlines
            if inline not in by_kind.values() or by_kind.get(obj.kind) is inline
        ]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            obj.save()
            return
        changes = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in lifecycle.DRAFT_FIELDS
        }
        services.campaign_update(campaign=obj, actor=request.user, changes=changes)

    def save_formset(self, request, form, formset, change):
        # The earning rules inline writes through the rules' own service, as the rule's page
        # does: the draft check under the campaign's lock, the audit entry, the earn path's
        # cache. A refusal rolls the whole page back (ServiceRefusalAdmin).
        if formset.model is not EarningRule:
            return super().save_formset(request, form, formset, change)
        reason = form.cleaned_data.get(CHANGE_REASON, "")
        for rule in formset.save(commit=False):
            services.rule_save(rule=rule, actor=request.user, reason=reason)
        for rule in formset.deleted_objects:
            services.rule_delete(rule=rule, actor=request.user, reason=reason)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["campaign_actions"] = [
                (action, lifecycle.ACTION_LABELS[action])
                for action in lifecycle.actions_allowed(obj)
            ]
            context["campaign_can_simulate"] = obj.kind == Campaign.Kind.EARNING and obj.status in (
                Campaign.Status.DRAFT,
                Campaign.Status.SCHEDULED,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<int:pk>/transition/<str:action>/",
                self.admin_site.admin_view(self.transition_view),
                name="campaigns_campaign_transition",
            ),
            path(
                "<int:pk>/simulate/",
                self.admin_site.admin_view(self.simulate_view),
                name="campaigns_campaign_simulate",
            ),
        ] + super().get_urls()

    @admin.action(description=_("Simulate the selected draft earning campaign"))
    def simulate_selected(self, request, queryset):
        chosen = list(queryset.filter(kind=Campaign.Kind.EARNING, status=Campaign.Status.DRAFT)[:2])
        if len(chosen) != 1:
            self.message_user(
                request, _("Select exactly one draft earning campaign."), messages.WARNING
            )
            return None
        return redirect(reverse("admin:campaigns_campaign_simulate", args=[chosen[0].pk]))

    def transition_view(self, request, pk: int, action: str):
        campaign = get_object_or_404(Campaign, pk=pk)
        if action not in TRANSITION_SERVICES:
            raise Http404
        if not self.has_change_permission(request, campaign):
            raise PermissionDenied
        form = TransitionForm(request.POST or None)
        problems = {}
        if action == "schedule":
            problems = services.campaign_schedule_problems(campaign)
        if request.method == "POST" and form.is_valid():
            try:
                TRANSITION_SERVICES[action](
                    campaign=campaign, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except DomainError as error:
                details = "; ".join(str(m) for m in error.fields.values())
                self.message_user(request, f"{error.detail} {details}".strip(), messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("“%(campaign)s”: %(action)s done.")
                    % {"campaign": campaign, "action": lifecycle.ACTION_LABELS[action]},
                    messages.SUCCESS,
                )
            return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"{lifecycle.ACTION_LABELS[action]}: {campaign}",
            "campaign": campaign,
            "form": form,
            "problems": problems,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "campaigns/campaign_transition.html", context)

    def simulate_view(self, request, pk: int):
        campaign = get_object_or_404(Campaign.objects.select_related("segment"), pk=pk)
        if not request.user.has_perm("campaigns.simulate_earningrule"):
            raise PermissionDenied
        if campaign.kind != Campaign.Kind.EARNING or campaign.status not in (
            Campaign.Status.DRAFT,
            Campaign.Status.SCHEDULED,
        ):
            self.message_user(
                request,
                _("Only an earning campaign that has not started can be simulated."),
                messages.WARNING,
            )
            return redirect(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
        today = timezone.localdate()
        initial = {"start": today - timedelta(days=365), "end": today - timedelta(days=1)}
        form = SimulationPeriodForm(request.POST or None, initial=initial)
        report = None
        if request.method == "POST" and form.is_valid():
            report = campaign_simulate(
                campaign=campaign, first=form.cleaned_data["start"], last=form.cleaned_data["end"]
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Simulate “%(campaign)s”") % {"campaign": campaign},
            "campaign": campaign,
            "form": form,
            "report": report,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "campaigns/campaign_simulation.html", context)


@admin.register(CampaignMemberUsage)
class CampaignMemberUsageAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "member", "period_start", "points", "cap"]
    list_select_related = ["campaign", "member"]
    list_filter = ["campaign"]
    raw_id_fields = ["member"]
    show_full_result_count = False


# --- Personalised offers and campaign results (issue 13: offers) ------------------------------
# The Campaign admin is another part's (issue 13, lifecycle): the offers inline joins it when it
# is registered (at the end of this block); offers also have their own page below.


@admin.register(CampaignOffer)
class CampaignOfferAdmin(ChangeReasonAdmin, admin.ModelAdmin):
    list_display = ["campaign", "priority", "rule", "category", "days", "reward"]
    list_select_related = ["campaign", "reward"]
    list_filter = ["rule"]
    search_fields = ["campaign__name", "category"]
    autocomplete_fields = ["reward"]
    fields = ["campaign", "priority", "rule", "category", "days", "reward"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "campaign":
            kwargs["queryset"] = Campaign.objects.filter(kind=Campaign.Kind.OFFER)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(CampaignResult)
class CampaignResultAdmin(ReadOnlyAdmin):
    """The stored sums, and per campaign the results page: lifts against the control group."""

    list_display = [
        "campaign",
        "window",
        "metric",
        "treated_n",
        "treated_mean",
        "control_n",
        "control_mean",
        "computed_at",
        "results_link",
    ]
    list_select_related = ["campaign"]
    list_filter = ["window", "metric"]
    search_fields = ["campaign__name"]
    show_full_result_count = False

    @admin.display(description=_("treated mean"))
    def treated_mean(self, obj):
        return round(obj.treated_sum / obj.treated_n, 4) if obj.treated_n else None

    @admin.display(description=_("control mean"))
    def control_mean(self, obj):
        return round(obj.control_sum / obj.control_n, 4) if obj.control_n else None

    @admin.display(description=_("results"))
    def results_link(self, obj):
        url = reverse("admin:campaigns_campaignresult_campaign", args=[obj.campaign_id])
        return format_html('<a href="{}">{}</a>', url, _("Lifts"))

    def get_urls(self):
        return [
            path(
                "campaign/<int:campaign_id>/",
                self.admin_site.admin_view(self.campaign_view),
                name="campaigns_campaignresult_campaign",
            )
        ] + super().get_urls()

    def campaign_view(self, request, campaign_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        campaign = get_object_or_404(Campaign, pk=campaign_id)
        if request.method == "POST":
            # Measuring a large audience takes a while: the worker does it, not this request.
            transaction.on_commit(lambda: tasks.results_refresh.delay(campaign.pk))
            messages.info(request, _("The results are being refreshed; reload in a minute."))
            return redirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "title": _("Results of %(campaign)s") % {"campaign": campaign},
            "campaign": campaign,
            "results": campaign_results(campaign),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "campaigns/results.html", context)
