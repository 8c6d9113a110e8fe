"""Background jobs with a progress bar: long work a page starts and a Celery worker does.

An app registers a kind of job once (in its ``apps.py`` ``ready`` or at import of its views)::

    @job_kind("campaigns.simulate", label=_("Simulation"), permission="campaigns.simulate_...",
              result_template="campaigns/simulation_result.html", charts=True)
    def simulate(job, progress):
        for i, chunk in enumerate(chunks):
            ...
            progress(i + 1, len(chunks))
        return {"points": 1234}          # stored as the job's result (JSON)

A page calls ``job_start(kind, params, user)`` and redirects to the job's page (``/jobs/<id>/``,
loyalty_site), which polls the progress and, when done, renders the kind's result template with
``job`` and ``result`` (a template that draws charts says so with ``charts=True``), or offers
the file the job wrote with ``job_file_write``. The function
runs outside any transaction of ours, so each ``progress`` call is seen by the page at once; it
should do its writes through services (each its own transaction) and may raise
``JobRefused(message)`` for a refusal the user should read. Any other exception fails the job
with a generic message and is logged.

It lives in members, the lowest app, so that every app's pages may start jobs.
"""

import io
import logging
import tempfile
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from members.models import BackgroundJob
from members.replica import on_replica

logger = logging.getLogger(__name__)

# How often a running job writes its progress (a job may report every row).
PROGRESS_INTERVAL_SECONDS = 0.5


class JobRefused(Exception):
    """A refusal the job's user should read (translated), not a failure of the program."""


@dataclass(frozen=True)
class JobKind:
    name: str
    label: str
    permission: str
    run: Callable
    result_template: str | None = None
    # The result template draws charts (templates/includes/chart.html): the job page loads the
    # chart library for it, also while the job still runs (its result arrives through htmx).
    charts: bool = False
    # An export or a report: its reads go to the read replica, if any (members.replica).
    reads_replica: bool = False


KINDS: dict[str, JobKind] = {}


def job_kind(
    name: str,
    *,
    label,
    permission: str,
    result_template: str | None = None,
    charts: bool = False,
    reads_replica: bool = False,
):
    """Register the decorated ``run(job, progress)`` as the job kind `name`."""

    def register(run):
        KINDS[name] = JobKind(name, label, permission, run, result_template, charts, reads_replica)
        return run

    return register


def job_start(kind: str, params: dict, user) -> BackgroundJob:
    """Queue a job of `kind` for `user` (who must hold the kind's permission); sent on commit."""
    from members.tasks import job_run

    spec = KINDS[kind]
    if not user.has_perm(spec.permission):
        raise PermissionDenied
    job = BackgroundJob.objects.create(kind=kind, params=params, requested_by=user)
    transaction.on_commit(lambda: job_run.delay(job.pk))
    return job


def job_for(user, job_id: int) -> BackgroundJob | None:
    """The job `job_id` if `user` started it, else None (another user's job is not shown)."""
    return BackgroundJob.objects.filter(pk=job_id, requested_by=user).first()


class _Progress:
    def __init__(self, job: BackgroundJob):
        self.job = job
        self.last = 0.0

    def __call__(self, done: int, total: int | None = None, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < PROGRESS_INTERVAL_SECONDS:
            return
        self.last = now
        total = total if total is not None else self.job.total
        done = min(done, total) if total is not None else done
        BackgroundJob.objects.filter(pk=self.job.pk).update(done=done, total=total)
        self.job.done, self.job.total = done, total


def job_run(job_id: int) -> str | None:
    """Run the queued job `job_id` once (a second delivery finds it claimed and does nothing)."""
    claimed = BackgroundJob.objects.filter(pk=job_id, status=BackgroundJob.Status.QUEUED).update(
        status=BackgroundJob.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    job = BackgroundJob.objects.get(pk=job_id)
    progress = _Progress(job)
    kind = KINDS[job.kind]
    try:
        with on_replica() if kind.reads_replica else nullcontext():
            result = kind.run(job, progress)
    except JobRefused as refusal:
        _finish(job, BackgroundJob.Status.FAILED, error=str(refusal))
    except Exception:
        logger.exception("background job %s (%s) failed", job.pk, job.kind)
        _finish(job, BackgroundJob.Status.FAILED, error=str(_("The job failed; see the log.")))
        raise
    else:
        _finish(job, BackgroundJob.Status.DONE, result=result)
    return job.status


def _finish(job: BackgroundJob, status: str, *, result=None, error: str = "") -> None:
    job.status, job.result, job.error, job.finished_at = status, result, error, timezone.now()
    if status == BackgroundJob.Status.DONE and job.total is not None:
        job.done = job.total
    job.save(update_fields=["status", "result", "error", "finished_at", "done"])


class job_file_write:  # noqa: N801 - used as a context manager, like open()
    """Write the job's download: ``with job_file_write(job, "members.csv") as out: out.write(..)``.

    Text (UTF-8) or, with ``binary=True``, bytes go to a temporary file (bounded memory for any
    size) that becomes the job's file when the block ends without an error.
    """

    def __init__(self, job: BackgroundJob, name: str, *, binary: bool = False):
        self.job, self.name, self.binary = job, name, binary

    def __enter__(self):
        self.raw = tempfile.TemporaryFile()
        if self.binary:
            return self.raw
        self.text = io.TextIOWrapper(self.raw, encoding="utf-8", newline="")
        return self.text

    def __exit__(self, kind, value, traceback):
        try:
            if not self.binary:
                self.text.flush()
                self.text.detach()
            if kind is None:
                self.raw.seek(0)
                self.job.file.save(self.name, File(self.raw), save=False)
                BackgroundJob.objects.filter(pk=self.job.pk).update(file=self.job.file.name)
        finally:
            self.raw.close()
        return False


def jobs_purge(*, older_than_days: int) -> int:
    """Delete finished jobs (and their files) created more than `older_than_days` ago."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    old = BackgroundJob.objects.filter(created_at__lt=cutoff).exclude(
        status__in=[BackgroundJob.Status.QUEUED, BackgroundJob.Status.RUNNING]
    )
    removed = 0
    for job in old.iterator():
        if job.file:
            job.file.delete(save=False)
        job.delete()
        removed += 1
    return removed
