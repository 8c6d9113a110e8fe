import pytest

from loyalty_site import health


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
@pytest.mark.parametrize("broken", ["database", "broker"])
def test_healthz_is_503_when_a_dependency_is_down(client, monkeypatch, broken):
    def fail():
        raise ConnectionError("unreachable")

    monkeypatch.setattr(health, f"_check_{broken}", fail)
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"][broken] == "error"


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_url_points_nowhere(client, monkeypatch):
    from loyalty_site.celery import app

    # Celery reads CELERY_BROKER_URL from the environment before its own configuration.
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setitem(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    # The health check opens a connection of its own: the app's producer pool, which the
    # (eager) tasks of later tests use, is left alone; closing it would break them.
    try:
        response = client.get("/healthz")
    finally:
        monkeypatch.undo()
    assert response.status_code == 503
    assert response.json()["checks"]["broker"] == "error"


def test_healthz_workers_names_the_workers_that_answer(client, monkeypatch):
    from loyalty_site.celery import app

    monkeypatch.setattr(
        app.control, "ping", lambda timeout: [{"celery@b": {"ok": "pong"}}, {"celery@a": {}}]
    )
    response = client.get("/healthz/workers")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "workers": ["celery@a", "celery@b"]}


@pytest.mark.parametrize("answer", ["none", "broker down"])
def test_healthz_workers_is_503_when_no_worker_answers(client, monkeypatch, answer):
    from loyalty_site.celery import app

    def ping(timeout):
        if answer == "broker down":
            raise ConnectionError("unreachable")
        return []

    monkeypatch.setattr(app.control, "ping", ping)
    response = client.get("/healthz/workers")
    assert response.status_code == 503
    assert response.json() == {"status": "error", "workers": []}
