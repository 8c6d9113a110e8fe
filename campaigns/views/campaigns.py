"""Marketing's campaign pages: the list, the builder (fields, rules, offers or message templates
with a preview for a chosen member, the lifecycle's buttons, a simulation), and the results.

Every write is a service: `campaign_create` and `campaign_update` for the fields (the lifecycle
decides what the status lets change), the `drafts` services for templates and offers, the
lifecycle's transitions for the buttons (each recorded as a CampaignTransition with who, when
and the reason asked for). A simulation and a results refresh run as background jobs.
"""

from datetime import datetime, time, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.template import TemplateSyntaxError
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import services
from campaigns.campaign_forms import (
    CampaignFilterForm,
    CampaignForm,
    CampaignOfferForm,
    MessagePreviewForm,
    MessageTemplateForm,
    SimulationForm,
    TransitionForm,
)
from campaigns.errors import MessageTemplateMissing
from campaigns.message_rendering import message_preview
from campaigns.models import (
    Campaign,
    CampaignMessage,
    CampaignOffer,
    CampaignResult,
    CampaignTransition,
    MessageTemplate,
)
from campaigns.results import campaign_results, campaign_spend_by_day, cumulative_per_member
from campaigns.services import lifecycle
from campaigns.simulator import campaign_simulate
from campaigns.views.segments import member_url
from ledger.models import Purchase
from loyalty_site.errors import DomainError, form_error
from members import background
from members import selectors as member_selectors
from members.models import Member

PAGE_SIZE = 25
S = Campaign.Status

TRANSITION_SERVICES = {
    "schedule": services.campaign_schedule,
    "unschedule": services.campaign_unschedule,
    "activate": services.campaign_activate,
    "pause": services.campaign_pause,
    "resume": services.campaign_resume,
    "end": services.campaign_end,
    "archive": services.campaign_archive,
}
# Buttons that stop or give up a campaign are drawn as dangerous.
DANGEROUS = {"end", "archive"}
STATUS_BADGES = {
    S.DRAFT: "",
    S.SCHEDULED: "warn",
    S.ACTIVE: "good",
    S.PAUSED: "warn",
    S.ENDED: "",
    S.ARCHIVED: "",
}
SIMULABLE = (S.DRAFT, S.SCHEDULED)


def _campaign(campaign_id: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.select_related("segment", "audience", "created_by"), pk=campaign_id
    )


# -- the list ------------------------------------------------------------------------------------


@login_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def campaign_list(request):
    filters = CampaignFilterForm(request.GET or None)
    campaigns = Campaign.objects.select_related("segment").order_by("-created_at", "-id")
    if filters.is_valid():
        if filters.cleaned_data["status"]:
            campaigns = campaigns.filter(status=filters.cleaned_data["status"])
        if filters.cleaned_data["kind"]:
            campaigns = campaigns.filter(kind=filters.cleaned_data["kind"])
    page = Paginator(campaigns, PAGE_SIZE).get_page(request.GET.get("page"))
    for campaign in page:
        campaign.badge = STATUS_BADGES.get(campaign.status, "")
        campaign.control_percent = f"{campaign.control_basis_points / 100:g}"
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "campaigns/campaigns/list.html",
        {
            "page": page,
            "filters": filters,
            "query": query.urlencode(),
        },
    )


# -- the builder ---------------------------------------------------------------------------------


FIELDSETS = [
    (_("Campaign"), ["name", "description", "kind", "segment"]),
    (_("Period"), ["starts_at", "ends_at"]),
    (_("Audience and messages"), ["control_percent", "frequency_capped"]),
    (
        _("Budget caps (earning campaigns)"),
        ["budget_points", "budget_money", "member_cap_points", "member_cap_period"],
    ),
]


def _fieldsets(form) -> list[tuple[str, list]]:
    sets = [
        (title, [form[name] for name in names if name in form.fields]) for title, names in FIELDSETS
    ]
    return [(title, fields) for title, fields in sets if fields]


def _builder_context(request, campaign: Campaign | None, **forms) -> dict:
    context = {"campaign": campaign, **forms}
    context["fieldsets"] = _fieldsets(context["form"])
    if campaign is None:
        return context
    context["badge"] = STATUS_BADGES.get(campaign.status, "")
    context["is_draft"] = campaign.status == S.DRAFT
    context["actions"] = [
        {
            "action": action,
            "label": lifecycle.ACTION_LABELS[action],
            "danger": action in DANGEROUS,
            "form": TransitionForm(prefix=action),
        }
        for action in lifecycle.actions_allowed(campaign)
    ]
    if campaign.status == S.DRAFT:
        context["problems"] = services.campaign_schedule_problems(campaign)
    context["locked_fields"] = _locked_facts(campaign, context["form"])
    context["transitions"] = list(
        CampaignTransition.objects.filter(campaign=campaign).select_related("actor")[:10]
    )
    if campaign.kind == Campaign.Kind.EARNING:
        context["rules"] = [
            {
                "rule": rule,
                "url": reverse("rule-edit", args=[rule.pk]),
            }
            for rule in campaign.rules.order_by("-priority", "pk")
        ]
        context["rule_new_url"] = f"{reverse('rule-new')}?campaign={campaign.pk}"
        if campaign.status in SIMULABLE:
            today = timezone.localdate()
            context.setdefault(
                "simulation_form",
                SimulationForm(
                    initial={"start": today - timedelta(days=365), "end": today - timedelta(days=1)}
                ),
            )
    elif campaign.kind == Campaign.Kind.OFFER:
        context["offers"] = list(
            CampaignOffer.objects.filter(campaign=campaign).select_related("reward")
        )
        if campaign.status == S.DRAFT:
            context.setdefault(
                "offer_form", CampaignOfferForm(instance=CampaignOffer(campaign=campaign))
            )
    if campaign.kind == Campaign.Kind.MESSAGE or campaign.message_templates.exists():
        templates = list(MessageTemplate.objects.filter(campaign=campaign))
        context["templates"] = templates
        if campaign.status == S.DRAFT:
            edited = next(
                (t for t in templates if str(t.pk) == request.GET.get("template", "")), None
            )
            context.setdefault(
                "template_form",
                MessageTemplateForm(instance=edited or MessageTemplate(campaign=campaign)),
            )
        if templates:
            channels = sorted({t.channel for t in templates})
            preview = MessagePreviewForm(initial={"channel": channels[0]})
            preview.fields["channel"].choices = [
                (value, label)
                for value, label in preview.fields["channel"].choices
                if value in channels
            ]
            context["preview_form"] = preview
    return context


def _locked_facts(campaign: Campaign, form) -> list[tuple[str, object]]:
    """The fields the status does not let change, with their values, shown read-only."""
    shown = []
    for name in form.locked if form is not None else ():
        if name == "control_percent":
            shown.append((_("Control group"), f"{campaign.control_basis_points / 100:g} %"))
            continue
        field = Campaign._meta.get_field(name)
        value = getattr(campaign, name)
        if field.choices:
            value = getattr(campaign, f"get_{name}_display")()
        elif isinstance(value, datetime):
            value = timezone.localtime(value)
        elif isinstance(value, bool):
            value = gettext("yes") if value else gettext("no")
        shown.append((field.verbose_name, value))
    return shown


@login_required
@permission_required("campaigns.add_campaign", raise_exception=True)
def campaign_new(request):
    initial = {key: request.GET[key] for key in ("kind", "segment") if request.GET.get(key)}
    form = CampaignForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(actor=request.user, **form.values())
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request, gettext("Draft “%(name)s” created.") % {"name": campaign.name}
            )
            return redirect("campaign-edit", campaign_id=campaign.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "campaigns/campaigns/builder.html",
        _builder_context(request, None, form=form),
        status=status,
    )


@login_required
@permission_required("campaigns.view_campaign", raise_exception=True)
def campaign_edit(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    if request.method != "POST":
        form = CampaignForm(instance=campaign)
        return render(
            request,
            "campaigns/campaigns/builder.html",
            _builder_context(request, campaign, form=form),
        )
    if not request.user.has_perm("campaigns.change_campaign"):
        raise PermissionDenied
    form = CampaignForm(request.POST, instance=_campaign(campaign_id))
    if form.is_valid():
        try:
            services.campaign_update(campaign=campaign, actor=request.user, changes=form.changes())
        except DomainError as error:
            form_error(form, error)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, gettext("Campaign saved."))
            return redirect("campaign-edit", campaign_id=campaign.pk)
    campaign.refresh_from_db()
    return render(
        request,
        "campaigns/campaigns/builder.html",
        _builder_context(request, campaign, form=form),
        status=400,
    )


def _render_builder_error(request, campaign: Campaign, **forms):
    form = CampaignForm(instance=campaign)
    return render(
        request,
        "campaigns/campaigns/builder.html",
        _builder_context(request, campaign, form=form, **forms),
        status=400,
    )


# -- the lifecycle's buttons ---------------------------------------------------------------------


@login_required
@permission_required("campaigns.change_campaign", raise_exception=True)
@require_POST
def campaign_action(request, campaign_id: int, action: str):
    """One move of the lifecycle (schedule, start now, pause, resume, end, archive, back to
    draft), with the reason the form asks for; refused moves come back as a message."""
    if action not in TRANSITION_SERVICES:
        raise Http404
    campaign = _campaign(campaign_id)
    form = TransitionForm(request.POST, prefix=action)
    label = lifecycle.ACTION_LABELS[action]
    if not form.is_valid():
        messages.error(
            request, gettext("“%(action)s”: give a reason for the log.") % {"action": label}
        )
        return redirect("campaign-edit", campaign_id=campaign.pk)
    try:
        TRANSITION_SERVICES[action](
            campaign=campaign, actor=request.user, reason=form.cleaned_data["reason"]
        )
    except DomainError as error:
        details = " ".join(str(message) for message in error.fields.values())
        messages.error(request, f"{error.detail} {details}".strip())
    else:
        messages.success(
            request,
            gettext("“%(campaign)s”: %(action)s done.") % {"campaign": campaign, "action": label},
        )
    return redirect("campaign-edit", campaign_id=campaign.pk)


# -- a draft's templates and offers --------------------------------------------------------------


@login_required
@permission_required("campaigns.add_messagetemplate", raise_exception=True)
@permission_required("campaigns.change_messagetemplate", raise_exception=True)
@require_POST
def campaign_template_save(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    template = None
    if request.POST.get("template", "").isdigit():
        template = get_object_or_404(
            MessageTemplate, pk=int(request.POST["template"]), campaign=campaign
        )
    form = MessageTemplateForm(
        request.POST, instance=template or MessageTemplate(campaign=campaign)
    )
    if form.is_valid():
        try:
            services.message_template_save(
                campaign=campaign, actor=request.user, template=template, **form.cleaned_data
            )
        except ValidationError as error:
            _errors_to_form(form, error)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, gettext("Message template saved."))
            return redirect("campaign-edit", campaign_id=campaign.pk)
    return _render_builder_error(request, campaign, template_form=form)


@login_required
@permission_required("campaigns.delete_messagetemplate", raise_exception=True)
@require_POST
def campaign_template_delete(request, campaign_id: int, template_id: int):
    campaign = _campaign(campaign_id)
    get_object_or_404(MessageTemplate, pk=template_id, campaign=campaign)
    try:
        services.message_template_delete(
            campaign=campaign, template_id=template_id, actor=request.user
        )
    except DomainError as error:
        messages.error(request, str(error.detail))
    else:
        messages.success(request, gettext("Message template deleted."))
    return redirect("campaign-edit", campaign_id=campaign.pk)


@login_required
@permission_required("campaigns.add_campaignoffer", raise_exception=True)
@require_POST
def campaign_offer_add(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    form = CampaignOfferForm(request.POST, instance=CampaignOffer(campaign=campaign))
    if form.is_valid():
        try:
            services.campaign_offer_add(campaign=campaign, actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            _errors_to_form(form, error)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, gettext("Offer added."))
            return redirect("campaign-edit", campaign_id=campaign.pk)
    return _render_builder_error(request, campaign, offer_form=form)


@login_required
@permission_required("campaigns.delete_campaignoffer", raise_exception=True)
@require_POST
def campaign_offer_delete(request, campaign_id: int, offer_id: int):
    campaign = _campaign(campaign_id)
    get_object_or_404(CampaignOffer, pk=offer_id, campaign=campaign)
    try:
        services.campaign_offer_delete(campaign=campaign, offer_id=offer_id, actor=request.user)
    except DomainError as error:
        messages.error(request, str(error.detail))
    else:
        messages.success(request, gettext("Offer removed."))
    return redirect("campaign-edit", campaign_id=campaign.pk)


def _errors_to_form(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, problems in error.error_dict.items():
            target = name if name in form.fields else None
            for problem in problems:
                form.add_error(target, problem)
    else:
        form.add_error(None, error)


# -- the message preview (htmx) ------------------------------------------------------------------


def _members_matching(term: str) -> list[Member]:
    """The member with this id, else up to 10 found by the search box's rules."""
    term = " ".join(term.split())
    if term.isdigit() and len(term) <= 10:
        member = Member.objects.select_related("tier").filter(pk=int(term)).first()
        if member is not None:
            return [member]
    return list(member_selectors.member_search(term=term).select_related("tier")[:10])


@login_required
@permission_required("campaigns.view_campaign", raise_exception=True)
@require_GET
def campaign_message_preview(request, campaign_id: int):
    """The campaign's message as a chosen member would get it: their language (unless one is
    chosen), their balance, tier and expiring points."""
    campaign = _campaign(campaign_id)
    form = MessagePreviewForm(request.GET)
    context = {"campaign": campaign, "form": form}
    if form.is_valid():
        found = _members_matching(form.cleaned_data["member"])
        if len(found) == 1:
            member = found[0]
            context["member"] = member
            context["member_url"] = member_url(member)
            try:
                context["message"] = message_preview(
                    campaign=campaign,
                    channel=form.cleaned_data["channel"],
                    member=member,
                    language=form.cleaned_data["language"] or None,
                )
            except MessageTemplateMissing as error:
                context["error"] = error.detail
            except TemplateSyntaxError as error:
                context["error"] = gettext("This template does not compile: %(error)s") % {
                    "error": error
                }
        else:
            context["choices"] = found
            context["query"] = request.GET.copy()
    return render(request, "campaigns/campaigns/message_preview.html", context)


# -- simulation: a background job ----------------------------------------------------------------


@background.job_kind(
    "campaigns.campaign_simulate",
    label=_("Campaign simulation"),
    permission="campaigns.simulate_earningrule",
    result_template="campaigns/campaigns/simulation_result.html",
)
def _simulate_job(job, progress):
    campaign = Campaign.objects.select_related("segment").filter(pk=job.params["campaign"]).first()
    if campaign is None:
        raise background.JobRefused(gettext("The campaign was deleted."))
    if campaign.kind != Campaign.Kind.EARNING or campaign.status not in SIMULABLE:
        raise background.JobRefused(
            gettext("Only an earning campaign that has not started can be simulated.")
        )
    first = datetime.fromisoformat(job.params["first"]).date()
    last = datetime.fromisoformat(job.params["last"]).date()
    zone = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(first, time()), zone)
    end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time()), zone)
    # The bar's total: the period's purchases (the simulator reports how many it has read).
    total = (
        Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .exclude(status=Purchase.Status.REJECTED)
        .count()
    )
    read = 0
    progress(0, total, force=True)

    def advanced(count: int) -> None:
        nonlocal read
        read += count
        progress(read, total)

    report = campaign_simulate(campaign=campaign, first=first, last=last, progress=advanced)
    return {
        "campaign": campaign.pk,
        "name": campaign.name,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "audience": report.audience,
        "control": report.control,
        "purchases": report.purchases,
        "purchases_treated": report.purchases_treated,
        "points": report.points,
        "extra_points": report.extra_points,
        "cost": str(report.cost),
        "currency": report.currency,
        "members_reached": report.members_reached,
        "budget_points": report.budget_points,
        "budget_exhausted_on": (
            report.budget_exhausted_on.isoformat() if report.budget_exhausted_on else None
        ),
        "points_by_rule": sorted(report.points_by_rule.items()),
        "liability_by_tier": [
            {"tier": row.tier, "points": row.points, "value": str(row.value)}
            for row in report.liability_by_tier
        ],
        "seconds": round(report.seconds, 1),
    }


@login_required
@permission_required("campaigns.simulate_earningrule", raise_exception=True)
@require_POST
def campaign_simulate_start(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    if campaign.kind != Campaign.Kind.EARNING or campaign.status not in SIMULABLE:
        messages.warning(
            request, gettext("Only an earning campaign that has not started can be simulated.")
        )
        return redirect("campaign-edit", campaign_id=campaign.pk)
    form = SimulationForm(request.POST)
    if not form.is_valid():
        return _render_builder_error(request, campaign, simulation_form=form)
    job = background.job_start(
        "campaigns.campaign_simulate",
        {
            "campaign": campaign.pk,
            "first": form.cleaned_data["start"].isoformat(),
            "last": form.cleaned_data["end"].isoformat(),
        },
        request.user,
    )
    return redirect("job", job_id=job.pk)


# -- results -------------------------------------------------------------------------------------


def _result_rows(window) -> list[dict]:
    rows = []
    for metric in window.metrics:
        rows.append(
            {
                "metric": metric,
                "relative": metric.relative * 100 if metric.relative is not None else None,
                "relative_ci": tuple(v * 100 for v in metric.relative_ci)
                if metric.relative_ci
                else None,
            }
        )
    return rows


def _spend_chart(campaign: Campaign, window) -> dict | None:
    """Chart.js config: cumulative spend per member, treated against control, by day."""
    reach = next((m for m in window.metrics if m.metric == CampaignResult.Metric.REACH), None)
    if reach is None:
        return None
    series = cumulative_per_member(
        campaign_spend_by_day(campaign), treated_n=reach.n_treated, control_n=reach.n_control
    )
    if not series:
        return None
    return {
        "type": "line",
        "data": {
            "labels": [day.isoformat() for day, _t, _c in series],
            "datasets": [
                {
                    "label": str(_("Treated")),
                    "data": [round(t, 2) if t is not None else None for _d, t, _c in series],
                    "borderColor": "#0f766e",
                    "backgroundColor": "#0f766e",
                    "pointRadius": 0,
                },
                {
                    "label": str(_("Control")),
                    "data": [round(c, 2) if c is not None else None for _d, _t, c in series],
                    "borderColor": "#b45309",
                    "backgroundColor": "#b45309",
                    "pointRadius": 0,
                },
            ],
        },
        "options": {
            "interaction": {"mode": "index", "intersect": False},
            "scales": {
                "y": {
                    "beginAtZero": True,
                    "title": {"display": True, "text": settings.LOYALTY_CURRENCY},
                }
            },
        },
    }


def _message_funnel(campaign: Campaign) -> dict | None:
    if campaign.kind != Campaign.Kind.MESSAGE:
        return None
    counts = services.messages_progress(campaign=campaign)
    reasons = [
        (label, counts.get(f"suppressed_{value}", 0))
        for value, label in CampaignMessage.Suppression.choices
        if value
    ]
    return {
        "total": sum(counts.get(status, 0) for status in CampaignMessage.Status.values),
        "waiting": counts.get(CampaignMessage.Status.PLANNED, 0)
        + counts.get(CampaignMessage.Status.SENDING, 0),
        "sent": counts.get(CampaignMessage.Status.SENT, 0),
        "failed": counts.get(CampaignMessage.Status.FAILED, 0),
        "suppressed": counts.get(CampaignMessage.Status.SUPPRESSED, 0),
        "reasons": reasons,
    }


@login_required
@permission_required("campaigns.view_campaignresult", raise_exception=True)
def campaign_results_page(request, campaign_id: int):
    """The stored results (refreshed daily, or by *Refresh now*): treated against control per
    window, with lifts, intervals, p-values and the sample-ratio check; the spend per member by
    day; the budget used; a message campaign's funnel."""
    campaign = _campaign(campaign_id)
    results = campaign_results(campaign)
    windows = [{"window": w, "rows": _result_rows(w)} for w in results.windows]
    campaign_window = next(
        (w for w in results.windows if w.window == CampaignResult.Window.CAMPAIGN), None
    )
    headline = {}
    if campaign_window is not None:
        headline = {m.metric: m for m in campaign_window.metrics}
    chart = _spend_chart(campaign, campaign_window) if campaign_window else None
    budget = None
    if campaign.kind == Campaign.Kind.EARNING or campaign.budgeted:
        budget = {
            "points_spent": campaign.points_spent,
            "budget_points": campaign.budget_points,
            "money_spent": campaign.money_spent,
            "budget_money": campaign.budget_money,
            "currency": settings.LOYALTY_CURRENCY,
        }
    return render(
        request,
        "campaigns/campaigns/results.html",
        {
            "campaign": campaign,
            "badge": STATUS_BADGES.get(campaign.status, ""),
            "control_percent": f"{campaign.control_basis_points / 100:g}",
            "results": results,
            "windows": windows,
            "headline": headline,
            "chart": chart,
            "budget": budget,
            "funnel": _message_funnel(campaign),
        },
    )


@background.job_kind(
    "campaigns.results_refresh",
    label=_("Campaign results"),
    permission="campaigns.view_campaignresult",
    result_template="campaigns/campaigns/results_refresh_result.html",
)
def _results_job(job, progress):
    campaign = Campaign.objects.filter(pk=job.params["campaign"]).first()
    if campaign is None:
        raise background.JobRefused(gettext("The campaign was deleted."))
    rows = services.campaign_results_refresh(campaign=campaign)
    return {"campaign": campaign.pk, "name": campaign.name, "rows": len(rows)}


@login_required
@permission_required("campaigns.view_campaignresult", raise_exception=True)
@require_POST
def campaign_results_refresh_start(request, campaign_id: int):
    campaign = _campaign(campaign_id)
    job = background.job_start("campaigns.results_refresh", {"campaign": campaign.pk}, request.user)
    return redirect("job", job_id=job.pk)
