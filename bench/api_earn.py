"""Throughput of the earn endpoint against a hand-written-SQL view, on one gunicorn.

Run by `make bench` (bench/run): prepares a channel, members and a one-rule programme in the
bench database, starts gunicorn on 127.0.0.1 with LOYALTY_BENCH on, then drives each target with
CLIENTS concurrent clients for SECONDS seconds and prints requests/s, p50 and p99 for both and
their ratio. Settings: BENCH_CLIENTS (16), BENCH_SECONDS (20), BENCH_WORKERS (2 × cores),
BENCH_PORT (8765), BENCH_MEMBERS (2000).
"""

import http.client
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

CLIENTS = int(os.environ.get("BENCH_CLIENTS", "16"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WORKERS = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 1))))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "2000"))
HOST = "127.0.0.1"


def prepare() -> tuple[str, list[str]]:
    """A fresh key for the bench channel and the public ids of the bench members."""
    import django

    django.setup()
    from campaigns.models import EarningRule
    from ledger.models import Account
    from loyalty_site.models import SCOPES, Channel, ChannelAPIKey
    from members.models import Member

    channel, _created = Channel.objects.get_or_create(
        name="bench", defaults={"kind": "pos", "scopes": list(SCOPES)}
    )
    ChannelAPIKey.objects.filter(channel=channel).update(revoked=True)
    _api_key, key = ChannelAPIKey.objects.create_key(name="bench", channel=channel)
    EarningRule.objects.get_or_create(
        name="Bench base rate", defaults={"kind": EarningRule.Kind.RATE, "rate": Decimal(1)}
    )
    have = Member.objects.filter(email__endswith="@bench.example").count()
    if have < MEMBERS:
        # Plain inserts: enrolling through the services would take minutes and is not measured.
        members = Member.objects.bulk_create(
            Member(email=f"m{n}@bench.example", first_name="Bench", last_name=str(n))
            for n in range(have, MEMBERS)
        )
        Account.objects.bulk_create(Account(member=m) for m in members)
    ids = [
        str(u)
        for u in Member.objects.filter(email__endswith="@bench.example").values_list(
            "public_id", flat=True
        )
    ]
    from django.db import connection

    connection.close()
    return key, ids


def start_server() -> subprocess.Popen:
    env = {
        **os.environ,
        "LOYALTY_BENCH": "true",
        "LOYALTY_API_RATE": "10000000/min",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "loyalty_site.wsgi",
            "--bind",
            f"{HOST}:{PORT}",
            "--workers",
            str(WORKERS),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(HOST, PORT, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status < 500:
                return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("gunicorn did not start")


def drive(path: str, key: str, members: list[str], seconds: float) -> dict:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds
    run = uuid.uuid4().hex[:8]

    def client(n: int) -> None:
        rng = random.Random(n)
        mine, codes = [], {}
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            amount = rng.randint(1, 200)
            body = json.dumps(
                {
                    "member": rng.choice(members),
                    "external_id": f"{run}-{n}-{i}",
                    "amount": f"{amount}.00",
                    "currency": "EUR",
                    "store": "S1",
                    "lines": [{"sku": "SKU1", "category": "c", "quantity": 1,
                               "amount": f"{amount}.00"}],
                }
            )  # fmt: skip
            started = time.perf_counter()
            conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
            conn.request(
                "POST",
                path,
                body=body,
                headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            conn.close()
            mine.append(time.perf_counter() - started)
            codes[response.status] = codes.get(response.status, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - began
    latencies.sort()
    ok = statuses.get(201, 0)
    return {
        "rps": ok / elapsed,
        "p50": statistics.median(latencies) * 1000 if latencies else 0,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else 0,
        "statuses": statuses,
    }


def main() -> None:
    key, members = prepare()
    server = start_server()
    try:
        results = {}
        for name, path in (("api", "/api/v1/purchases/"), ("sql", "/api/bench/earn/")):
            drive(path, key, members, 2)  # warm the workers' connections and caches
            results[name] = drive(path, key, members, SECONDS)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print()
    print(
        f"earn bench: {CLIENTS} clients, {SECONDS:.0f} s each, gunicorn {WORKERS} sync workers, "
        f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"{'target':<28}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}  statuses")
    labels = {"api": "POST /api/v1/purchases/", "sql": "hand-written SQL view"}
    for name, r in results.items():
        print(
            f"{labels[name]:<28}{r['rps']:>10.0f}{r['p50']:>10.1f}{r['p99']:>10.1f}  "
            f"{r['statuses']}"
        )
    ratio = results["api"]["rps"] / results["sql"]["rps"] if results["sql"]["rps"] else 0
    print(f"throughput ratio api/sql: {ratio:.2f} (goal ≥ 0.6; p99 goal ≤ 30 ms)")


if __name__ == "__main__":
    main()
