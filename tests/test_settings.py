import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from loyalty_site import env

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("1", True), ("Off", False), ("no", False)]
)
def test_env_bool_reads_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("X_FLAG", raw)
    assert env.env_bool("X_FLAG", not expected) is expected


def test_env_bool_refuses_a_typo(monkeypatch):
    monkeypatch.setenv("X_FLAG", "flase")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG must be a boolean"):
        env.env_bool("X_FLAG", False)


def test_env_int_refuses_text_and_values_below_minimum(monkeypatch):
    monkeypatch.setenv("X_NUM", "ten")
    with pytest.raises(ImproperlyConfigured, match="X_NUM must be a whole number"):
        env.env_int("X_NUM", 1)
    monkeypatch.setenv("X_NUM", "-3")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env.env_int("X_NUM", 1, minimum=0)


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("X_HOSTS", " a.example , b.example,,")
    assert env.env_list("X_HOSTS", []) == ["a.example", "b.example"]
    monkeypatch.delenv("X_HOSTS")
    assert env.env_list("X_HOSTS", ["default"]) == ["default"]


def _settings_with(tmp_path, shown="settings.DEBUG", **variables):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DEBUG", "DATABASE_URL", "LOYALTY_"))
    }
    environment.update({"LOYALTY_VAR_DIR": str(tmp_path), **variables})
    return subprocess.run(
        [sys.executable, "-c", f"from django.conf import settings; print({shown})"],
        cwd=ROOT,
        env={**environment, "DJANGO_SETTINGS_MODULE": "loyalty_site.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("DEBUG", "flase", "DEBUG must be a boolean"),
        ("DATABASE_URL", "mysql://root@localhost/x", "must name a PostgreSQL or SQLite database"),
        ("CACHE_URL", "memcached://127.0.0.1:11211", "CACHE_URL must be locmem:// or a redis://"),
        ("LOYALTY_API_RATE", "fast", "LOYALTY_API_RATE must be a request rate such as 6000/min"),
    ],
)
def test_settings_stop_with_a_clear_error_on_a_bad_value(tmp_path, variable, value, message):
    result = _settings_with(tmp_path, **{variable: value})
    assert result.returncode != 0
    assert message in result.stderr


def test_cache_url_takes_a_redis_url(tmp_path):
    assert _settings_with(tmp_path, CACHE_URL="redis://127.0.0.1:6379/1").returncode == 0


def test_embedded_defaults_keep_a_generated_secret_key(tmp_path):
    first = _settings_with(tmp_path)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    assert _settings_with(tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_production_configuration_passes_check_deploy(tmp_path):
    # Not DJANGO_ALLOW_ASYNC_UNSAFE either: the browser tests set it in this process, and
    # check --deploy rightly refuses it.
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LOYALTY_") and key != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    environment.update(
        {
            "LOYALTY_VAR_DIR": str(tmp_path),
            "DEBUG": "false",
            "HTTPS": "true",
            "SECRET_KEY": "p" * 20 + "roduction-secret-key-" + "x9Q" * 10,
            "ALLOWED_HOSTS": "loyalty.example.nl",
            "DJANGO_SETTINGS_MODULE": "loyalty_site.settings",
        }
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_visibility_timeout_shorter_than_a_task_is_refused(tmp_path):
    # The broker would deliver a running task a second time.
    result = _settings_with(
        tmp_path,
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        CELERY_VISIBILITY_TIMEOUT="600",
        CELERY_TASK_TIME_LIMIT="900",
    )
    assert result.returncode != 0
    assert "CELERY_VISIBILITY_TIMEOUT must exceed CELERY_TASK_TIME_LIMIT" in result.stderr


def _database_options(tmp_path, **variables) -> str:
    result = _settings_with(tmp_path, shown="settings.DATABASES['default']['OPTIONS']", **variables)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgresql_binds_server_side_and_prepares_except_behind_a_transaction_pooler(tmp_path):
    url = "postgres://postgres@127.0.0.1:5432/loyalty"
    assert _database_options(tmp_path, DATABASE_URL=url) == (
        "{'server_side_binding': True, 'prepare_threshold': 5}"
    )
    # In transaction mode the next statement may reach another server connection, where the
    # prepared statement does not exist.
    assert _database_options(tmp_path, DATABASE_URL=url, DATABASE_POOLER="transaction") == (
        "{'server_side_binding': True, 'prepare_threshold': None}"
    )
