"""Background jobs started from pages: permission, progress, result or file, refusals, purge."""

import os
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from members import background
from members.background import JobRefused, job_file_write, job_kind, job_run, job_start
from members.models import BackgroundJob

PERMISSION = "members.view_member"  # Customer service and Marketing hold it; Finance does not


@job_kind("tests.count", label="Count", permission=PERMISSION, result_template=None)
def _count(job, progress):
    upto = job.params["upto"]
    seen = []
    for i in range(upto):
        progress(i + 1, upto, force=True)
        seen.append(BackgroundJob.objects.get(pk=job.pk).done)
    if job.params.get("refuse"):
        raise JobRefused("Nothing to count before 2020.")
    if job.params.get("crash"):
        raise ZeroDivisionError
    return {"counted": upto, "seen": seen}


@job_kind("tests.export", label="Export", permission=PERMISSION)
def _export(job, progress):
    with job_file_write(job, "rows.csv") as out:
        for i in range(job.params["rows"]):
            out.write(f"{i},é\n")
    return {"rows": job.params["rows"]}


@pytest.fixture
def service(staff_user):
    return staff_user("Customer service")


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _started(user, kind, **params) -> BackgroundJob:
    job = job_start(kind, params, user)
    job.refresh_from_db()
    return job


def test_a_job_needs_its_kinds_permission(staff_user):
    with pytest.raises(PermissionDenied):
        job_start("tests.count", {"upto": 1}, staff_user("Finance"))
    assert not BackgroundJob.objects.exists()


def test_a_job_is_sent_to_a_worker_on_commit(service, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_start("tests.count", {"upto": 3}, service)
    job.refresh_from_db()
    assert job.status == BackgroundJob.Status.DONE
    # Each progress report is written at once, where the page polling it can read it.
    assert job.result == {"counted": 3, "seen": [1, 2, 3]}
    assert (job.done, job.total, job.percent) == (3, 3, 100)
    assert job.started_at <= job.finished_at


def test_a_job_runs_once_even_when_delivered_twice(service):
    job = _started(service, "tests.count", upto=2)
    assert job_run(job.pk) == BackgroundJob.Status.DONE
    assert job_run(job.pk) is None


def test_a_refusal_fails_the_job_with_its_message(service):
    job = _started(service, "tests.count", upto=1, refuse=True)
    job_run(job.pk)
    job.refresh_from_db()
    assert job.status == BackgroundJob.Status.FAILED
    assert job.error == "Nothing to count before 2020."


def test_a_crash_fails_the_job_without_showing_the_exception(service):
    job = _started(service, "tests.count", upto=1, crash=True)
    with pytest.raises(ZeroDivisionError):
        job_run(job.pk)
    job.refresh_from_db()
    assert job.status == BackgroundJob.Status.FAILED
    assert "ZeroDivision" not in job.error and job.error


def test_progress_is_written_at_most_twice_a_second(service, monkeypatch):
    job = _started(service, "tests.count", upto=1)
    writes = []
    monkeypatch.setattr(BackgroundJob.objects, "filter", lambda **kw: writes.append(kw) or _Nop())
    progress = background._Progress(job)
    for i in range(100):
        progress(i, 100)
    assert len(writes) == 1


class _Nop:
    def update(self, **kwargs):
        return 1


def test_the_page_polls_until_the_job_ends_then_shows_the_download(client, service):
    job = _started(service, "tests.export", rows=3)
    client.force_login(service)
    page = client.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'hx-trigger="every 1s"' in html and "<progress" in html
    job_run(job.pk)
    fragment = client.get(f"/jobs/{job.pk}/", HTTP_HX_REQUEST="true")
    html = fragment.content.decode()
    assert "<html" not in html  # the fragment only
    assert "hx-trigger" not in html  # finished: the polling stops
    assert f"/jobs/{job.pk}/download" in html
    download = client.get(f"/jobs/{job.pk}/download")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment")
    assert b"".join(download.streaming_content).decode() == "0,é\n1,é\n2,é\n"


def test_another_users_job_is_not_found(client, service, staff_user):
    job = _started(service, "tests.export", rows=1)
    job_run(job.pk)
    client.force_login(staff_user("Customer service"))
    assert client.get(f"/jobs/{job.pk}/").status_code == 404
    assert client.get(f"/jobs/{job.pk}/download").status_code == 404


def test_purge_removes_old_finished_jobs_and_their_files(service):
    old = _started(service, "tests.export", rows=1)
    job_run(old.pk)
    old.refresh_from_db()
    path = old.file.path
    running = _started(service, "tests.count", upto=1)
    BackgroundJob.objects.update(created_at=timezone.now() - timedelta(days=8))
    BackgroundJob.objects.filter(pk=running.pk).update(status=BackgroundJob.Status.RUNNING)
    recent = _started(service, "tests.count", upto=1)
    job_run(recent.pk)
    assert background.jobs_purge(older_than_days=7) == 1
    assert set(BackgroundJob.objects.values_list("pk", flat=True)) == {running.pk, recent.pk}
    assert not os.path.exists(path)
