"""Marketing's pages for engagement kinds, challenges and badges: lists with their figures and
edit forms with real fields. campaigns.services saves (checks a challenge's goal, audits);
campaigns.selectors counts.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from campaigns import selectors, services
from campaigns.models import Badge, Challenge, EngagementKind
from loyalty_site.errors import DomainError, form_error
from members.admin_numbers import column_range
from rewards.forms import DATETIME_LOCAL, DateTimeLocalInput


def _bounded(db_field, **kwargs):
    # Number fields bounded by their column (a 2**31 in an integer column would be a 500).
    if db_field.name in ("limit_count", "window_days"):
        kwargs["min_value"] = 1  # empty means no limit; 0 would mean never
    return db_field.formfield(**{**column_range(db_field), **kwargs})


class _Reason(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("reason"),
        max_length=500,
        help_text=gettext_lazy("Why you make this change (kept in the audit log)."),
    )


class EngagementKindForm(forms.ModelForm):
    reason = _Reason.base_fields["reason"]

    class Meta:
        model = EngagementKind
        formfield_callback = _bounded
        fields = (
            "code",
            "name",
            "points",
            "limit_count",
            "limit_period",
            "requires_approval",
            "collects_nps",
            "active",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Channels send events by code (and birthday/referral are found by it): it stays.
            self.fields["code"].disabled = True
            self.fields["code"].help_text = _("Channels send events by this code; it stays.")


class ChallengeForm(forms.ModelForm):
    reason = _Reason.base_fields["reason"]

    class Meta:
        model = Challenge
        formfield_callback = _bounded
        fields = (
            "name",
            "description",
            "active",
            "goal",
            "target",
            "category",
            "event_kind",
            "window_days",
            "starts_at",
            "ends_at",
            "reward_points",
            "badge",
        )
        widgets = {
            "goal": forms.RadioSelect,
            "description": forms.Textarea(attrs={"rows": 3}),
            "starts_at": DateTimeLocalInput(),
            "ends_at": DateTimeLocalInput(),
        }
        help_texts = {
            "target": gettext_lazy(
                "Purchases or events to make, or the amount to spend (in the programme's currency)."
            ),
            "category": gettext_lazy("Spend goal only: count only lines of this category."),
            "event_kind": gettext_lazy("Engagement-event goal only; empty: events of any kind."),
            "starts_at": gettext_lazy("Empty: from now."),
            "ends_at": gettext_lazy("Empty: no end."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["goal"].choices = Challenge.Goal.choices  # a radio button per goal, no blank
        self.fields["event_kind"].queryset = EngagementKind.objects.order_by("name")
        self.fields["badge"].queryset = Badge.objects.order_by("name")
        for name in ("starts_at", "ends_at"):
            self.fields[name].input_formats = [DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d"]


class BadgeForm(forms.ModelForm):
    reason = _Reason.base_fields["reason"]

    class Meta:
        model = Badge
        fields = ("code", "name", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


def _save_form(request, form, save, *, template: str, context: dict, done_url: str):
    """Validate `form`, hand its unsaved object to `save(obj, reason)` (a service), show the
    service's refusal on the form; redirect to `done_url` when saved."""
    if request.method == "POST" and form.is_valid():
        try:
            saved = save(form.save(commit=False), form.cleaned_data["reason"])
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("%(name)s is saved.") % {"name": saved})
            return redirect(done_url)
    return render(
        request,
        template,
        {"form": form, **context},
        status=400 if request.method == "POST" else 200,
    )


# --- engagement kinds ---


@login_required
@permission_required("campaigns.view_engagementkind", raise_exception=True)
def engagement_kind_list(request):
    return render(
        request,
        "campaigns/engagement/kind_list.html",
        {
            "kinds": selectors.engagement_kinds_overview(),
            "can_add": request.user.has_perm("campaigns.add_engagementkind"),
            "can_change": request.user.has_perm("campaigns.change_engagementkind"),
        },
    )


def _kind_form(request, kind: EngagementKind | None):
    return _save_form(
        request,
        EngagementKindForm(request.POST or None, instance=kind),
        lambda obj, reason: services.engagement_kind_save(
            kind=obj, actor=request.user, reason=reason
        ),
        template="campaigns/engagement/kind_form.html",
        context={"kind": kind},
        done_url="engagement-kinds",
    )


@login_required
@permission_required("campaigns.add_engagementkind", raise_exception=True)
def engagement_kind_new(request):
    return _kind_form(request, None)


@login_required
@permission_required("campaigns.change_engagementkind", raise_exception=True)
def engagement_kind_edit(request, kind_id: int):
    return _kind_form(request, get_object_or_404(EngagementKind, pk=kind_id))


# --- challenges and badges ---


@login_required
@permission_required("campaigns.view_challenge", raise_exception=True)
def challenge_list(request):
    return render(
        request,
        "campaigns/engagement/challenge_list.html",
        {
            "challenges": selectors.challenges_overview(),
            "badges": selectors.badges_overview(),
            "can_add": request.user.has_perm("campaigns.add_challenge"),
            "can_change": request.user.has_perm("campaigns.change_challenge"),
            "can_add_badge": request.user.has_perm("campaigns.add_badge"),
            "can_change_badge": request.user.has_perm("campaigns.change_badge"),
        },
    )


def _challenge_form(request, challenge: Challenge | None):
    return _save_form(
        request,
        ChallengeForm(request.POST or None, instance=challenge),
        lambda obj, reason: services.challenge_save(
            challenge=obj, actor=request.user, reason=reason
        ),
        template="campaigns/engagement/challenge_form.html",
        context={"challenge": challenge},
        done_url="challenges",
    )


@login_required
@permission_required("campaigns.add_challenge", raise_exception=True)
def challenge_new(request):
    return _challenge_form(request, None)


@login_required
@permission_required("campaigns.change_challenge", raise_exception=True)
def challenge_edit(request, challenge_id: int):
    return _challenge_form(request, get_object_or_404(Challenge, pk=challenge_id))


def _badge_form(request, badge: Badge | None):
    return _save_form(
        request,
        BadgeForm(request.POST or None, instance=badge),
        lambda obj, reason: services.badge_save(badge=obj, actor=request.user, reason=reason),
        template="campaigns/engagement/badge_form.html",
        context={"badge": badge},
        done_url="challenges",
    )


@login_required
@permission_required("campaigns.add_badge", raise_exception=True)
def badge_new(request):
    return _badge_form(request, None)


@login_required
@permission_required("campaigns.change_badge", raise_exception=True)
def badge_edit(request, badge_id: int):
    return _badge_form(request, get_object_or_404(Badge, pk=badge_id))
