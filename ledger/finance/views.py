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
from django.http import HttpResponse
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


def _charts(report):
    ends = _month_ends(report.as_of, 12)
    over_time = {
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
    first = timezone.localtime(report.as_of).date().replace(day=1)
    months = [first]
    for _step in range(23):
        months.append(month_next(months[-1]))
    held = {m: row.points for m, row in report.by_expiry_month if m is not None}
    past = sum(points for m, points in held.items() if m < first)
    expiry = {
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
    return over_time, expiry


def _export(request, report, period, deferred):
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
        data = exports.rollforward_dataset(period)
    elif kind == "deferred":
        data = exports.deferred_dataset(deferred)
    else:
        data = exports.dataset(report, kind)
    stamp = timezone.localtime(report.as_of).strftime("%Y%m%d-%H%M%S")
    response = HttpResponse(
        exports.dataset_bytes(data, fmt), content_type=exports.CONTENT_TYPES[fmt]
    )
    response["Content-Disposition"] = f'attachment; filename="liability-{kind}-{stamp}.{fmt}"'
    return response


@login_required
@permission_required(VIEW, raise_exception=True)
def finance(request):
    form = AsOfForm(request.GET or None)
    as_of, month = timezone.now(), None
    if form.is_bound and form.is_valid():
        as_of = form.cleaned_data["as_of"]
        month = form.cleaned_data["period"]
    month = month or timezone.localtime(as_of).date().replace(day=1)
    first = month
    for _step in range(11):
        first = (first - timedelta(days=1)).replace(day=1)
    # The reports' reads (every entry and lot up to a date) go to the read replica, if any.
    with on_replica():
        report = liability_at(as_of=as_of)
        period = rollforward_month(year=month.year, month=month.month)
        deferred = deferred_revenue(first=first, last=month)
        if request.GET.get("export"):
            response = _export(request, report, period, deferred)
            if response is not None:
                return response
        over_time, expiry = _charts(report)
        cohorts = breakage(now=as_of)
    adjustments = Paginator(
        Entry.objects.filter(
            kind=Entry.Kind.ADJUST, created_at__gt=period.start, created_at__lte=period.end
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
    query = request.GET.copy()
    query.pop("export", None)
    query.pop("format", None)
    query.pop("page", None)
    return render(
        request,
        "ledger/finance/finance.html",
        {
            "form": form,
            "report": report,
            "period": period,
            "rollforward_rows": [
                (code, label, period.lines[code], [lines[code] for _t, lines in period.by_tier])
                for code, label in LINES.items()
            ],
            "tiers": [tier for tier, _lines in period.by_tier],
            "breakage": cohorts,
            "deferred": deferred,
            "over_time": over_time,
            "expiry": expiry,
            "adjustments": adjustments,
            "closes": PeriodClose.objects.select_related("closed_by")[:12],
            "values": PointValue.objects.select_related("recorded_by")[:10],
            "estimates": RedemptionEstimate.objects.select_related("recorded_by")[:10],
            "reconcile_job": reconcile_job,
            "reconciled": reconciled,
            "reconciled_sample": (reconciled.mismatches[:RECONCILE_SHOWN] if reconciled else []),
            "query": query.urlencode(),
            "export_kinds": [
                ("summary", _("Summary")),
                ("expiry_month", _("By expiry month")),
                ("tier", _("By tier")),
                ("rollforward", _("Roll-forward")),
                ("deferred", _("Deferred revenue")),
            ],
            "close_form": CloseForm(auto_id="close_%s", initial={"month": _last_closable()}),
            "value_form": ValueForm(auto_id="value_%s"),
            "estimate_form": EstimateForm(
                auto_id="estimate_%s", initial={"rate": cohorts.expected_redemption}
            ),
            "can_close": request.user.has_perm("ledger.close_period"),
            "can_value": request.user.has_perm("ledger.add_pointvalue"),
            "can_estimate": request.user.has_perm("ledger.add_redemptionestimate"),
        },
    )


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
