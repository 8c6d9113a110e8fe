"""Back-office pages that span every app: the dashboard (the start page) and the page of a
background job."""

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import render

from loyalty_site.dashboard import days, panels, periods
from loyalty_site.dashboard.forms import PeriodForm
from loyalty_site.navigation import sections_for
from members import background


@login_required
def home(request):
    """The dashboard for the user's role over a chosen period (a user without a role sees
    that they have none). Each part shows only to a role whose permissions cover it
    (`loyalty_site.dashboard.panels`); the figures come from the daily rows plus today live."""
    sections = sections_for(request.user)
    context = {"sections": sections}
    if sections:
        today = days.local_today()
        form = PeriodForm(request.GET or None, today=today)
        period = form.chosen()
        figures = periods.period_figures(period, today=today)
        context |= {
            "form": form,
            "period": figures.period,
            "previous": figures.previous,
            "live": figures.live,
            **panels.dashboard_for(request.user, figures),
        }
    return render(request, "home.html", context)


def _job(request, job_id: int):
    job = background.job_for(request.user, job_id)
    if job is None:
        raise Http404
    return job, background.KINDS.get(job.kind)


@login_required
def job_page(request, job_id: int):
    """A background job's progress, then its result or its file (only its starter sees it).

    The page polls itself through htmx (the fragment `jobs/progress.html`) until the job ends.
    """
    job, kind = _job(request, job_id)
    template = "jobs/progress.html" if request.htmx else "jobs/job.html"
    return render(request, template, {"job": job, "kind": kind})


@login_required
def job_download(request, job_id: int):
    job, _kind = _job(request, job_id)
    if not job.file:
        raise Http404
    name = job.file.name.rsplit("/", 1)[-1]
    return FileResponse(job.file.open("rb"), as_attachment=True, filename=name)
