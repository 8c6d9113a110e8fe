"""Marketing's earning rules: the list, the editor with its pickers, and the simulator beside it.

The editor saves through `services.rule_save` only. The simulator never runs in the request:
it starts a background job (`campaigns.rule_simulate`) whose progress fragment the panel shows
and polls (loyalty_site's job page), then its result. The job gets the editor's form data as
posted, unsaved changes included, and validates it again in the worker.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.forms.models import model_to_dict
from django.http import Http404, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import conditions, selectors, services, simulator
from campaigns.forms import EarningRuleEditForm, SimulationPeriodForm, rule_draft_saved
from campaigns.models import Campaign, EarningRule
from ledger import selectors as ledger_selectors
from loyalty_site.errors import DomainError, form_error
from members.background import KINDS, JobRefused, job_kind, job_start

RULES_PER_PAGE = 25
SIMULATE_KIND = "campaigns.rule_simulate"


# -- the list ----------------------------------------------------------------------------------


class RuleFilterForm(forms.Form):
    active = forms.ChoiceField(
        label=_("Active"),
        required=False,
        choices=[("", _("All")), ("yes", _("Active")), ("no", _("Inactive"))],
    )
    kind = forms.ChoiceField(
        label=_("Kind"), required=False, choices=[("", _("All")), *EarningRule.Kind.choices]
    )
    campaign = forms.ChoiceField(label=_("Campaign"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        earning = Campaign.objects.filter(kind=Campaign.Kind.EARNING).order_by("name")
        self.fields["campaign"].choices = [
            ("", _("All")),
            ("none", _("None: the programme's rules")),
            *((str(pk), name) for pk, name in earning.values_list("pk", "name")),
        ]

    def filter(self, rules):
        if not self.is_valid():
            return rules
        data = self.cleaned_data
        if data["active"]:
            rules = rules.filter(active=data["active"] == "yes")
        if data["kind"]:
            rules = rules.filter(kind=data["kind"])
        if data["campaign"] == "none":
            rules = rules.filter(campaign__isnull=True)
        elif data["campaign"]:
            rules = rules.filter(campaign_id=int(data["campaign"]))
        return rules


def _number(value) -> str:
    """A decimal without its trailing zeros, in the language's format (1.5, not 1.5000)."""
    normal = value.normalize()
    return formats.number_format(normal, max(0, -normal.as_tuple().exponent))


def rule_gives(rule: EarningRule) -> str:
    """What the rule gives, in words, with its caps."""
    if rule.kind == EarningRule.Kind.RATE:
        text = ngettext(
            "%(rate)s point per %(currency)s",
            "%(rate)s points per %(currency)s",
            1 if rule.rate == 1 else 2,
        ) % {"rate": _number(rule.rate), "currency": settings.LOYALTY_CURRENCY}
    elif rule.kind == EarningRule.Kind.MULTIPLIER:
        text = gettext("× %(multiplier)s the base rate") % {"multiplier": _number(rule.multiplier)}
    else:
        text = ngettext("+%(points)s point", "+%(points)s points", rule.bonus_points) % {
            "points": rule.bonus_points
        }
    caps = []
    if rule.cap_per_purchase is not None:
        caps.append(gettext("at most %(points)s a purchase") % {"points": rule.cap_per_purchase})
    if rule.cap_per_member is not None:
        caps.append(
            gettext("at most %(points)s a member per %(period)s")
            % {"points": rule.cap_per_member, "period": rule.get_cap_period_display().lower()}
        )
    return "; ".join([text, *caps])


def _listed(values, most: int = 4) -> str:
    shown = ", ".join(str(v) for v in list(values)[:most])
    if len(values) > most:
        shown += " " + gettext("and %(count)s more") % {"count": len(values) - most}
    return shown


def rule_conditions(rule: EarningRule) -> list[str]:
    """The rule's conditions in words (its tiers and segments prefetched); [] is every purchase."""
    words = []
    lists = [
        (gettext("Categories"), rule.categories),
        (gettext("SKUs"), rule.skus),
        (gettext("Stores"), rule.stores),
        (gettext("Channels"), rule.channels),
        (gettext("Tiers"), [tier.name for tier in rule.tiers.all()]),
        (gettext("Segments"), [segment.name for segment in rule.segments.all()]),
    ]
    for label, values in lists:
        if values:
            words.append(f"{label}: {_listed(values)}")
    if rule.days_of_week:
        names = dict(conditions.WEEKDAYS)
        days = [str(names[day]) for day in sorted(rule.days_of_week) if day in names]
        words.append(", ".join(days))
    if rule.time_from or rule.time_until:
        words.append(
            gettext("%(start)s to %(until)s")
            % {
                "start": rule.time_from.strftime("%H:%M") if rule.time_from else "00:00",
                "until": rule.time_until.strftime("%H:%M") if rule.time_until else "24:00",
            }
        )
    if rule.min_spend is not None:
        words.append(gettext("spend at least %(amount)s") % {"amount": _number(rule.min_spend)})
    if rule.first_purchase_only:
        words.append(gettext("first purchase only"))
    if rule.birthday:
        words.append(gettext("on the member's birthday"))
    if rule.anniversary:
        words.append(gettext("on the membership anniversary"))
    return words


@login_required
@permission_required("campaigns.view_earningrule", raise_exception=True)
@require_GET
def rule_list(request):
    filters = RuleFilterForm(request.GET or None)
    rules = filters.filter(
        EarningRule.objects.select_related("campaign")
        .prefetch_related("tiers", "segments")
        .order_by("-priority", "name", "id")
    )
    page = Paginator(rules, RULES_PER_PAGE).get_page(request.GET.get("page"))
    rows = [
        {"rule": rule, "gives": rule_gives(rule), "conditions": rule_conditions(rule)}
        for rule in page
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "campaigns/rules/list.html",
        {"filters": filters, "page": page, "rows": rows, "query": query.urlencode()},
    )


# -- the editor --------------------------------------------------------------------------------


def _form_options() -> dict:
    return {
        "choices": selectors.rule_condition_values(),
        "suggest_urls": {
            name: reverse("rule-suggest", args=[name]) for name in selectors.SEARCHABLE_CONDITIONS
        },
    }


def _copy_initial(source: EarningRule) -> dict:
    """A duplicate's starting values: the source's, inactive (a copy that went live at once
    would give its points twice), without a campaign that no longer takes rules."""
    initial = model_to_dict(source, fields=EarningRuleEditForm._meta.fields)
    initial["name"] = gettext("Copy of %(name)s") % {"name": source.name}
    initial["name"] = initial["name"][: EarningRule._meta.get_field("name").max_length]
    initial["active"] = False
    if source.campaign_id is not None and not services.rule_editable(source):
        initial["campaign"] = None
    return initial


def _period_initial() -> dict:
    today = timezone.localdate()
    return {"start": today - timedelta(days=365), "end": today - timedelta(days=1)}


def _editor(request, rule: EarningRule, form, *, status: int = 200):
    return render(
        request,
        "campaigns/rules/edit.html",
        {
            "rule": rule,
            "form": form,
            "read_only": form.read_only,
            "period_form": SimulationPeriodForm(initial=_period_initial()),
            "can_simulate": request.user.has_perm("campaigns.simulate_earningrule"),
        },
        status=status,
    )


@login_required
@permission_required("campaigns.change_earningrule", raise_exception=True)
def rule_edit(request, pk: int | None = None):
    """New rule (`pk` None; `?copy=ID` starts from another rule), or the rule `pk`."""
    if pk is None:
        if not request.user.has_perm("campaigns.add_earningrule"):
            raise PermissionDenied
        rule = EarningRule()
    else:
        rule = get_object_or_404(EarningRule.objects.select_related("campaign"), pk=pk)
    read_only = not services.rule_editable(rule)
    options = _form_options()
    if request.method == "POST":
        if read_only:
            # A forged POST (the page shows no button): refused, nothing read from it.
            messages.error(
                request,
                gettext(
                    "This rule belongs to the campaign “%(campaign)s”, which is no longer a "
                    "draft: its rules cannot be changed."
                )
                % {"campaign": rule.campaign.name},
            )
            form = EarningRuleEditForm(instance=rule, read_only=True, **options)
            return _editor(request, rule, form, status=409)
        form = EarningRuleEditForm(request.POST, instance=rule, **options)
        if form.is_valid():
            created = rule.pk is None
            try:
                saved = services.rule_save(
                    rule=form.instance,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    tiers=form.cleaned_data["tiers"],
                    segments=form.cleaned_data["segments"],
                )
            except DomainError as refusal:
                form_error(form, refusal)
            else:
                text = gettext("Rule “%(name)s” created.") if created else None
                text = text or gettext("Rule “%(name)s” saved.")
                messages.success(request, text % {"name": saved.name})
                return redirect("rule-edit", pk=saved.pk)
        return _editor(request, rule, form, status=200 if form.is_valid() else 400)
    initial = {}
    source_id = request.GET.get("copy", "")
    if pk is None and source_id.isdigit():
        source = get_object_or_404(EarningRule.objects.select_related("campaign"), pk=source_id)
        initial = _copy_initial(source)
    campaign_id = request.GET.get("campaign", "")
    if pk is None and campaign_id.isdigit():
        # "Add a rule" on a campaign's page: the new rule belongs to that campaign.
        initial["campaign"] = int(campaign_id)
    form = EarningRuleEditForm(instance=rule, initial=initial, read_only=read_only, **options)
    return _editor(request, rule, form)


@login_required
@permission_required("campaigns.change_earningrule", raise_exception=True)
@require_GET
def rule_suggest(request, condition: str):
    """<option>s for a picker's "others" box (a <datalist>): values seen in recent purchases
    that start as the last value typed. Each option is the whole box's text, so that picking
    one keeps what was typed before its comma."""
    if condition not in selectors.SEARCHABLE_CONDITIONS:
        raise Http404
    typed = request.GET.get(f"{condition}_other", "")
    before, _comma, last = typed.rpartition(",")
    last = last.strip()
    values = selectors.rule_condition_search(condition, last) if last else []
    prefix = f"{before.strip()}, " if before.strip() else ""
    options = [f"{prefix}{value}" for value in values]
    return render(request, "campaigns/rules/suggestions.html", {"options": options})


# -- the simulator -------------------------------------------------------------------------------


@login_required
@permission_required("campaigns.simulate_earningrule", raise_exception=True)
@require_POST
def rule_simulate(request, pk: int | None = None):
    """Start the simulation job of the rule as edited (the editor's form, posted with the
    period) or as saved (`mode=saved`); answer with the job's progress fragment, or the
    problems that keep it from starting."""
    rule = EarningRule() if pk is None else get_object_or_404(EarningRule, pk=pk)
    mode = "saved" if request.POST.get("mode") == "saved" and rule.pk else "edited"
    period = SimulationPeriodForm(request.POST)
    problems = [str(m) for m in period.non_field_errors()]
    for name in ("start", "end"):
        problems += [f"{period[name].label}: {m}" for m in period.errors.get(name, [])]
    form = None
    if mode == "edited":
        form = EarningRuleEditForm(request.POST, instance=rule, for_simulation=True)
        if not form.is_valid():
            problems.append(gettext("Correct the rule first:"))
            for name, errors in form.errors.items():
                label = form.fields[name].label if name in form.fields else ""
                problems += [f"{label}: {m}" if label else str(m) for m in errors]
    if problems:
        # 200: htmx swaps only a successful answer into the panel.
        return render(request, "campaigns/rules/simulation_problems.html", {"problems": problems})
    data = {
        key: request.POST.getlist(key)
        for key in request.POST
        if key not in ("csrfmiddlewaretoken", "reason", "start", "end", "mode")
    }
    params = {
        "rule_id": rule.pk,
        "mode": mode,
        "data": data if mode == "edited" else {},
        "first": period.cleaned_data["start"].isoformat(),
        "last": period.cleaned_data["end"].isoformat(),
    }
    job = job_start(SIMULATE_KIND, params, request.user)
    job.refresh_from_db()  # an eager worker (tests, embedded mode) may have run it already
    return render(request, "jobs/progress.html", {"job": job, "kind": KINDS[SIMULATE_KIND]})


@job_kind(
    SIMULATE_KIND,
    label=_("Simulation of an earning rule"),
    permission="campaigns.simulate_earningrule",
    result_template="campaigns/rules/simulation_result.html",
    charts=True,
)
def rule_simulate_job(job, progress) -> dict:
    params = job.params
    rule = EarningRule()
    if params["rule_id"] is not None:
        rule = EarningRule.objects.prefetch_related("tiers", "segments").filter(
            pk=params["rule_id"]
        )
        rule = rule.first()
        if rule is None:
            raise JobRefused(gettext("The rule was deleted."))
    if params["mode"] == "saved":
        draft = rule_draft_saved(rule)
    else:
        data = QueryDict(mutable=True)
        for key, values in params["data"].items():
            data.setlist(key, values)
        form = EarningRuleEditForm(data, instance=rule, for_simulation=True)
        if not form.is_valid():
            raise JobRefused(
                gettext("The rule as edited is no longer valid: %(errors)s")
                % {"errors": "; ".join(m for errors in form.errors.values() for m in errors)}
            )
        draft = form.draft()
    first, last = date.fromisoformat(params["first"]), date.fromisoformat(params["last"])
    tz = timezone.get_current_timezone()
    total = ledger_selectors.purchase_count(
        start=datetime.combine(first, datetime.min.time(), tzinfo=tz),
        end=datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz),
    )
    progress(0, total, force=True)
    read = 0

    def step(count: int) -> None:
        nonlocal read
        read += count
        progress(read, total)

    report = simulator.rule_simulate(rule=draft, first=first, last=last, progress=step)
    return {
        "rule": draft.name,
        "mode": params["mode"],
        "first": first.isoformat(),
        "last": last.isoformat(),
        "purchases": report.purchases,
        "points": report.points,
        "members_reached": report.members_reached,
        "cost": str(report.cost),
        "currency": report.currency,
        "programme_points": report.programme_points,
        "programme_points_with": report.programme_points_with,
        "extra_points": report.extra_points,
        "extra_cost": str(report.extra_cost),
        "budget_points": report.budget_points,
        "budget_exhausted_on": (
            report.budget_exhausted_on.isoformat() if report.budget_exhausted_on else None
        ),
        "days": [day.isoformat() for day in report.points_by_day],
        "points_by_day": list(report.points_by_day.values()),
        "change_by_day": list(report.change_by_day.values()),
        "seconds": round(report.seconds, 2),
    }
