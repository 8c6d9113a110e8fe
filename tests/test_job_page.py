"""/jobs/<id>/: a job's own page loads the chart library when the job's result draws charts."""

import pytest
from django.urls import reverse

from campaigns.views.rules import SIMULATE_KIND
from members.background import KINDS, job_kind
from members.models import BackgroundJob

pytestmark = pytest.mark.django_db

CHART_LIBRARY = "vendor/chartjs-4.6.1/chart.umd.min.js"


@job_kind("tests.charted", label="Charted", permission="members.view_member", charts=True)
def _charted(job, progress):
    return {}


@job_kind("tests.plain", label="Plain", permission="members.view_member")
def _plain(job, progress):
    return {}


@pytest.fixture
def marketer(client, staff_user):
    user = staff_user("Marketing")
    client.force_login(user)
    return user


@pytest.mark.parametrize("status", ["running", "done"])
def test_a_job_whose_result_draws_charts_loads_the_library_running_or_done(
    client, marketer, status, django_assert_max_num_queries
):
    job = BackgroundJob.objects.create(kind="tests.charted", requested_by=marketer, status=status)

    with django_assert_max_num_queries(6):
        response = client.get(reverse("job", args=[job.pk]))

    assert response.status_code == 200
    assert CHART_LIBRARY in response.content.decode()


def test_a_job_without_charts_does_not_load_the_library(client, marketer):
    job = BackgroundJob.objects.create(kind="tests.plain", requested_by=marketer, status="done")

    response = client.get(reverse("job", args=[job.pk]))

    assert response.status_code == 200
    assert CHART_LIBRARY not in response.content.decode()


def test_the_rule_simulation_says_it_draws_charts():
    assert KINDS[SIMULATE_KIND].charts


def test_another_users_job_is_not_found(client, marketer, staff_user):
    job = BackgroundJob.objects.create(kind="tests.charted", requested_by=staff_user("Marketing"))

    assert client.get(reverse("job", args=[job.pk])).status_code == 404
