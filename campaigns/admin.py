import json
from datetime import datetime, time, timedelta

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campaigns import conditions, segments, services
from campaigns.message_rendering import message_preview
from campaigns.models import (
    AbuseRule,
    Badge,
    Campaign,
    CampaignMessage,
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
    filter_horizontal = ["tiers", "segments"]
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
class SegmentAdmin(admin.ModelAdmin):
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
            return segments.segment_count(obj)
        except ValidationError as exc:  # a definition saved around validation
            return "; ".join(exc.messages)

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
