"""Finance's page (/finance/): the liability as of a date, roll-forward, breakage, deferred
revenue, reconciliation, staff adjustments, period close; exports. Thin: the reports live in
``ledger.finance``; every change is one service call.

The jobs registered here run the slow work in the worker: the per-member export (a million
rows, streamed to a file) and a reconciliation of every account.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from ledger import selectors
from ledger.finance import exports, reconciliation
from ledger.finance.breakage import breakage
from ledger.finance.closing import period_close
from ledger.finance.deferred import deferred_revenue, estimate_record
from ledger.finance.forms import AsOfForm, CloseForm, EstimateForm, MemberExportForm, ValueForm
from ledger.finance.liability import liability_at, points_outstanding
from ledger.finance.moments import day_end, month_next
from ledger.finance.rollforward import LINES, rollforward_month
from ledger.finance.values import point_value_change
from ledger.models import (
    Account,
    Entry,
    PeriodClose,
    PointValue,
    ReconciliationRun,
    RedemptionEstimate,
)
from loyalty_site.errors import DomainError, form_error
from members import background
from members.models import BackgroundJob
from members.replica import on_replica

VIEW = "ledger.view_finance"
RECONCILE_CHUNK = 2000  # accounts per chunk of a run started from the page
RECONCILE_SHOWN = 20  # mismatches of the last run listed on the page (the job page: 100)


def _month_ends(as_of, count: int):
    """The last ``count`` month ends up to ``as_of`` (the last one is ``as_of`` itself)."""
    month = timezone.localtime(as_of).date().replace(day=1)
    moments = [as_of]
    for _step in range(count - 1):
        moments.append(day_end(month - timedelta(days=1)))
        month = (month - timedelta(days=1)).replace(day=1)
    return list(reversed(moments))


def _over_time_chart(as_of):
    ends = _month_ends(as_of, 12)
    return {
        "type": "line",
        "data": {
            "labels": [timezone.localtime(m).strftime("%Y-%m-%d") for m in ends],
            "datasets": [
                {
                    "label": str(gettext_lazy("Outstanding points")),
                    "data": [points_outstanding(as_of=m) for m in ends],
                }
            ],
        },
    }


def _expiry_chart(report):
    first = timezone.localtime(report.as_of).date().replace(day=1)
    months = [first]
    for _step in range(23):
        months.append(month_next(months[-1]))
    held = {m: row.points for m, row in report.by_expiry_month if m is not None}
    past = sum(points for m, points in held.items() if m < first)
    return {
        "type": "bar",
        "data": {
            "labels": [m.strftime("%Y-%m") for m in months],
            "datasets": [
                {
                    "label": str(gettext_lazy("Points expiring")),
                    "data": [held.get(m, 0) + (past if m == first else 0) for m in months],
                }
            ],
        },
    }


def _export(request, as_of, month):
    """The table export asked for, computing only the report it needs (None: not an export)."""
    kind, fmt = request.GET.get("export"), request.GET.get("format", "csv")
    if fmt not in exports.FORMATS or kind not in (
        "summary",
        "expiry_month",
        "tier",
        "rollforward",
        "deferred",
    ):
        return None
    if kind == "rollforward":
        data = exports.rollforward_dataset(rollforward_month(year=month.year, month=month.month))
    elif kind == "deferred":
        data = exports.deferred_dataset(deferred_revenue(first=_year_before(month), last=month))
    else:
        data = exports.dataset(liability_at(as_of=as_of), kind)
    stamp = timezone.localtime(as_of).strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(
        exports.dataset_bytes(data, fmt), content_type=exports.CONTENT_TYPES[fmt]
    )
    response["Content-Disposition"] = f'attachment; filename="liability-{kind}-{stamp}.{fmt}"'
    return response


def _year_before(month):
    """The first of the 12 months that end with ``month``."""
    first = month
    for _step in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def _moment(request):
    """(form, as of, month of the roll-forward) from the page's query."""
    form = AsOfForm(request.GET or None)
    as_of, month = timezone.now(), None
    if form.is_bound and form.is_valid():
        as_of = form.cleaned_data["as_of"]
        month = form.cleaned_data["period"]
    return form, as_of, month or timezone.localtime(as_of).date().replace(day=1)


def _query(request) -> str:
    query = request.GET.copy()
    for name in ("export", "format", "page"):
        query.pop(name, None)
    return query.urlencode()


@login_required
@permission_required(VIEW, raise_exception=True)
def finance(request):
    """The page: the liability of the moment and what is cheap to read. The reports that scan
    months of history (the liability at 12 month ends, the roll-forward, breakage, deferred
    revenue) are sections the page loads after itself (``finance_section``, htmx), so the page
    answers at once, whatever the size of the ledger."""
    form, as_of, month = _moment(request)
    # The reports' reads (every entry and lot up to a date) go to the read replica, if any.
    with on_replica():
        if request.GET.get("export"):
            response = _export(request, as_of, month)
            if response is not None:
                return response
        report = liability_at(as_of=as_of)
    month_end = day_end(month_next(month) - timedelta(days=1))
    adjustments = Paginator(
        Entry.objects.filter(
            kind=Entry.Kind.ADJUST,
            created_at__gt=day_end(month - timedelta(days=1)),
            created_at__lte=month_end,
        )
        .select_related("actor", "account__member")
        .order_by("-created_at", "-id"),
        25,
    ).get_page(request.GET.get("page"))
    reconcile_job = (
        BackgroundJob.objects.filter(kind="ledger.reconcile", requested_by=request.user)
        .order_by("-pk")
        .first()
    )
    reconciled = reconciliation.reconciliation_last()
    query = _query(request)
    return render(
        request,
        "ledger/finance/finance.html",
        {
            "form": form,
            "report": report,
            "month_end": month_end,
            "expiry": _expiry_chart(report),
            "sections": {
                name: f"{reverse('finance-section', args=[name])}?{query}" for name in SECTIONS
            },
            "adjustments": adjustments,
            "closes": PeriodClose.objects.select_related("closed_by")[:12],
            "values": PointValue.objects.select_related("recorded_by")[:10],
            "estimates": RedemptionEstimate.objects.select_related("recorded_by")[:10],
            "reconcile_job": reconcile_job,
            "reconciled": reconciled,
            "reconciled_sample": (reconciled.mismatches[:RECONCILE_SHOWN] if reconciled else []),
            "query": query,
            "export_kinds": [
                ("summary", _("Summary")),
                ("expiry_month", _("By expiry month")),
                ("tier", _("By tier")),
                ("rollforward", _("Roll-forward")),
                ("deferred", _("Deferred revenue")),
            ],
            "close_form": CloseForm(auto_id="close_%s", initial={"month": _last_closable()}),
            "value_form": ValueForm(auto_id="value_%s"),
            "estimate_form": EstimateForm(auto_id="estimate_%s"),
            "can_close": request.user.has_perm("ledger.close_period"),
            "can_value": request.user.has_perm("ledger.add_pointvalue"),
            "can_estimate": request.user.has_perm("ledger.add_redemptionestimate"),
        },
    )


def _section_over_time(as_of, month):
    return {"over_time": _over_time_chart(as_of)}


def _section_rollforward(as_of, month):
    period = rollforward_month(year=month.year, month=month.month)
    return {
        "period": period,
        "rollforward_rows": [
            (code, label, period.lines[code], [lines[code] for _t, lines in period.by_tier])
            for code, label in LINES.items()
        ],
        "tiers": [tier for tier, _lines in period.by_tier],
    }


def _section_breakage(as_of, month):
    return {"breakage": breakage(now=as_of)}


def _section_deferred(as_of, month):
    return {"deferred": deferred_revenue(first=_year_before(month), last=month)}


SECTIONS = {
    "over_time": _section_over_time,
    "rollforward": _section_rollforward,
    "breakage": _section_breakage,
    "deferred": _section_deferred,
}


@login_required
@permission_required(VIEW, raise_exception=True)
def finance_section(request, name: str):
    """One of the page's slow sections, for the moment and month of the page's query."""
    if name not in SECTIONS:
        raise Http404
    _form, as_of, month = _moment(request)
    with on_replica():
        context = SECTIONS[name](as_of, month)
    return render(request, f"ledger/finance/section_{name}.html", context)


def _last_closable() -> str:
    last = PeriodClose.objects.order_by("-month").values_list("month", flat=True).first()
    if last is not None:
        return month_next(last).strftime("%Y-%m")
    this = timezone.localdate().replace(day=1)
    return (this - timedelta(days=1)).strftime("%Y-%m")


def _post_form(request, form_class, action, done_message):
    """Validate, call the service, report; a refusal becomes the form's error, nothing written."""
    form = form_class(request.POST)
    if form.is_valid():
        try:
            action(form.cleaned_data)
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, done_message)
            return redirect("finance")
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)
    return redirect("finance")


@login_required
@permission_required("ledger.close_period", raise_exception=True)
@require_POST
def finance_close(request):
    return _post_form(
        request,
        CloseForm,
        lambda data: period_close(month=data["month"], actor=request.user, note=data["note"]),
        _("The month is closed; its figures are stored."),
    )


@login_required
@permission_required("ledger.add_pointvalue", raise_exception=True)
@require_POST
def finance_value(request):
    return _post_form(
        request,
        ValueForm,
        lambda data: point_value_change(
            value=data["value"],
            valid_from=data["valid_from"],
            reason=data["reason"],
            actor=request.user,
        ),
        _("The new value of a point is recorded."),
    )


@login_required
@permission_required("ledger.add_redemptionestimate", raise_exception=True)
@require_POST
def finance_estimate(request):
    return _post_form(
        request,
        EstimateForm,
        lambda data: estimate_record(
            rate=data["rate"],
            valid_from=data["valid_from"],
            reason=data["reason"],
            actor=request.user,
        ),
        _("The expected redemption rate is recorded."),
    )


@login_required
@permission_required(VIEW, raise_exception=True)
@require_POST
def finance_member_export(request):
    form = MemberExportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Give a date as YYYY-MM-DD, or YYYY-MM-DD HH:MM:SS."))
        return redirect("finance")
    job = background.job_start(
        "ledger.liability_members",
        {"as_of": form.cleaned_data["as_of"].isoformat(), "format": form.cleaned_data["format"]},
        request.user,
    )
    return redirect(reverse("job", args=[job.pk]))


@login_required
@permission_required(VIEW, raise_exception=True)
@require_POST
def finance_reconcile(request):
    job = background.job_start("ledger.reconcile", {}, request.user)
    return redirect(reverse("job", args=[job.pk]))


@background.job_kind(
    "ledger.liability_members",
    label=gettext_lazy("Liability per member"),
    permission=VIEW,
    reads_replica=True,
)
def liability_members_job(job, progress):
    from datetime import datetime

    as_of = datetime.fromisoformat(job.params["as_of"])
    fmt = job.params.get("format", "csv")
    total = Account.objects.count()  # for the bar only: accounts, not rows
    rows = exports.member_table(as_of=as_of)

    def counted():
        for number, row in enumerate(rows):
            progress(number, total)
            yield row

    name = f"liability-members-{timezone.localtime(as_of):%Y%m%d-%H%M%S}.{fmt}"
    if fmt == "xlsx":
        with background.job_file_write(job, name, binary=True) as out:
            exports.xlsx_write(counted(), out)
    else:
        with background.job_file_write(job, name) as out:
            for line in exports.csv_lines(counted()):
                out.write(line)
    return {"as_of": job.params["as_of"]}


@background.job_kind(
    "ledger.reconcile",
    label=gettext_lazy("Ledger reconciliation"),
    permission=VIEW,
    result_template="ledger/finance/reconcile_result.html",
)
def reconcile_job(job, progress):
    ids = selectors.account_ids()
    size = RECONCILE_CHUNK
    run = reconciliation.reconciliation_start(
        trigger=ReconciliationRun.Trigger.PAGE,
        started_by=job.requested_by,
        account_ids=ids,
        chunk_size=size,
    )
    for number, chunk in enumerate(reconciliation.chunked(ids, size)):
        reconciliation.reconciliation_chunk(account_ids=chunk, run_id=run.pk)
        progress(min((number + 1) * size, len(ids)), len(ids))
    run.refresh_from_db()
    return {
        "run": run.pk,
        "checked": run.checked,
        "count": run.mismatch_count,
        "mismatches": run.mismatches,
    }
