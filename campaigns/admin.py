from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campaigns import conditions, services
from campaigns.message_rendering import message_preview
from campaigns.models import (
    AbuseRule,
    Badge,
    Campaign,
    CampaignMessage,
    CampaignOffer,
    CampaignResult,
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
    SegmentSnapshotMember,
)
from campaigns.simulator import period_refusal, simulate
from members.admin_actions import rows_run
from members.admin_numbers import NumbersInRange
from members.models import Member


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the services: staff look, the services write."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


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


class SimulationForm(forms.Form):
    start = forms.DateField(label=_("From"))
    end = forms.DateField(label=_("Until (inclusive)"))
    rules = forms.ModelMultipleChoiceField(
        label=_("Rules"),
        queryset=EarningRule.objects.all(),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The rules to replay, active or not, exactly as they are set now."),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end"):
            refusal = period_refusal(
                first=cleaned["start"], last=cleaned["end"], today=timezone.localdate()
            )
            if refusal:
                raise forms.ValidationError(refusal)
        return cleaned


@admin.register(EarningRule)
class EarningRuleAdmin(NumbersInRange, admin.ModelAdmin):
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
    filter_horizontal = ["tiers"]
    readonly_fields = ["budget_spent", "created_at"]
    actions = ["simulate_selected"]
    fieldsets = [
        (None, {"fields": ["name", "description", "active", "priority", "stacks"]}),
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
        from django.shortcuts import redirect

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
                rules=list(form.cleaned_data["rules"].prefetch_related("tiers")),
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
class AbuseRuleAdmin(NumbersInRange, admin.ModelAdmin):
    list_display = ["kind", "threshold", "min_history", "active"]
    list_filter = ["active", "kind"]


@admin.register(EngagementKind)
class EngagementKindAdmin(NumbersInRange, admin.ModelAdmin):
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
class BadgeAdmin(admin.ModelAdmin):
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
class ChallengeAdmin(NumbersInRange, admin.ModelAdmin):
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
class MessageTemplateAdmin(admin.ModelAdmin):
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
class FrequencyCapAdmin(NumbersInRange, admin.ModelAdmin):
    list_display = ["__str__", "channel", "max_messages", "period", "unit", "active"]
    list_editable = ["active"]
    list_filter = ["channel", "active"]


# The campaign's templates on its own page. The Campaign admin is another part's (issue 13,
# lifecycle): the inline joins it when it is registered, else the templates' own admin serves.
if admin.site.is_registered(Campaign):
    _campaign_admin = type(admin.site.get_model_admin(Campaign))
    _campaign_admin.inlines = [*_campaign_admin.inlines, MessageTemplateInline]


# --- Personalised offers and campaign results (issue 13: offers) ------------------------------
# The Campaign admin is another part's (issue 13, lifecycle): the offers inline joins it when it
# is registered (at the end of this block); offers also have their own page below.


class CampaignOfferInline(admin.TabularInline):
    model = CampaignOffer
    fields = ["priority", "rule", "category", "days", "reward"]
    autocomplete_fields = ["reward"]
    extra = 0


@admin.register(CampaignOffer)
class CampaignOfferAdmin(admin.ModelAdmin):
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
        from django.utils.html import format_html

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
        from django.contrib import messages
        from django.db import transaction
        from django.shortcuts import get_object_or_404, redirect

        from campaigns import tasks
        from campaigns.results import campaign_results

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


if admin.site.is_registered(Campaign):
    _campaign_admin = type(admin.site.get_model_admin(Campaign))
    _campaign_admin.inlines = [*_campaign_admin.inlines, CampaignOfferInline]
