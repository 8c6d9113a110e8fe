"""What the data benches share: Django set up on the generated data set, timing, and the one way
a figure is printed (and recorded for `bench/run`'s summary table).

A figure is printed with its PostgreSQL reference measured in the same run and the ratio. When
``BENCH_RESULTS`` names a file, each figure is also appended to it as one JSON line, which
`bench/run` turns into its summary.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_URL = "postgres://postgres@127.0.0.1:5432/loyalty_benchdata"


def django_setup() -> None:
    """Django on the generated data set: ``BENCH_DATA_URL`` (default loyalty_benchdata), which
    ``bench/generate.py`` filled."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = os.environ.get("BENCH_DATA_URL", DATA_URL)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_generated')")
        if cursor.fetchone()[0] is None:
            raise SystemExit(
                f"{os.environ['DATABASE_URL']} holds no generated data set: run bench/generate.py"
            )


def members_generated() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT members FROM bench_generated ORDER BY finished_at DESC LIMIT 1")
        return cursor.fetchone()[0]


def samples_ms(action: Callable[[], object], *, repeat: int, warmup: int = 1) -> list[float]:
    """Wall-clock milliseconds of ``repeat`` calls, after ``warmup`` calls not counted."""
    for _ in range(warmup):
        action()
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        times.append((time.perf_counter() - began) * 1000)
    return times


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def report(
    figure: str,
    value: float,
    unit: str,
    *,
    reference: float | None = None,
    goal: float | None = None,
    goal_ratio: float | None = None,
    note: str = "",
) -> dict:
    """Print one figure with its reference and ratio; met: within ``goal`` (in ``unit``) and
    within ``goal_ratio`` times the reference, whichever are given."""
    ratio = value / reference if reference else None
    met = (goal is None or value <= goal) and (
        goal_ratio is None or (ratio is not None and ratio <= goal_ratio)
    )
    goals = []
    if goal is not None:
        goals.append(f"<= {goal:g} {unit}")
    if goal_ratio is not None:
        goals.append(f"<= {goal_ratio:g}x ref")
    row = {
        "figure": figure,
        "value": round(value, 2),
        "unit": unit,
        "reference": None if reference is None else round(reference, 2),
        "ratio": None if ratio is None else round(ratio, 2),
        "goal": ", ".join(goals),
        "met": met,
        "note": note,
    }
    line = f"{figure}: {value:.1f} {unit}"
    if reference is not None:
        line += f"; reference {reference:.1f} {unit}; ratio {ratio:.2f}"
    if goals:
        line += f"; goal {row['goal']}: {'met' if met else 'NOT met'}"
    if note:
        line += f" ({note})"
    print(line, flush=True)
    if os.environ.get("BENCH_RESULTS"):
        with open(os.environ["BENCH_RESULTS"], "a", encoding="utf-8") as results:
            results.write(json.dumps(row) + "\n")
    return row


def admin_client():
    """A test Client logged in as a superuser (created once), as the back office's pages see
    one; the host it sends is allowed for the run."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    if "testserver" not in settings.ALLOWED_HOSTS and "*" not in settings.ALLOWED_HOSTS:
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user, created = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True}
    )
    if created:
        user.set_unusable_password()
        user.save()
    client = Client(secure=settings.SECURE_SSL_REDIRECT)
    client.force_login(user)
    return client


def page_sample(client, url: str, *, repeat: int) -> dict:
    """Time ``repeat`` GETs of ``url`` (after one not counted) and replay the SQL one of them
    ran, straight on the connection: the database's share of the page, its reference."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    if response.status_code not in (200, 302):
        raise SystemExit(f"{url} answered {response.status_code}")
    queries = [q["sql"] for q in captured.captured_queries]
    times = samples_ms(lambda: client.get(url), repeat=repeat, warmup=0)

    def replay():
        with connection.cursor() as cursor:
            for sql in queries:
                if sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO")):
                    continue
                cursor.cursor.execute(sql)
                if cursor.cursor.description:
                    cursor.cursor.fetchall()

    sql_times = samples_ms(replay, repeat=repeat, warmup=0)
    full_counts = [
        sql
        for sql in queries
        if sql.upper().startswith("SELECT COUNT(*)") and " WHERE " not in sql.upper()
    ]
    return {
        "status": response.status_code,
        "median": median(times),
        "p95": p95(times),
        "sql_median": median(sql_times),
        "queries": len(queries),
        "full_counts": full_counts,
        "slowest": sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:2],
    }
