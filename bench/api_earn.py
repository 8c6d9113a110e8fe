"""Throughput of the earn endpoint against a hand-written-SQL view, on one gunicorn.

Run by `make bench` (bench/run). Prepares a channel, a one-rule programme and a million members
(generated in SQL once, then reused) in the bench database, starts gunicorn on 127.0.0.1 with
LOYALTY_BENCH on, and measures, in one run on one server:

1. the earn endpoint and the hand-written view, CLIENTS clients each sending as fast as they
   can, in alternating rounds (so that a slower minute of the machine does not favour one): req/s,
   p50 and p99 over all rounds, and the ratio of the two;
2. the floor of the stack: a Django view that answers without touching the database, under the
   same load (no earn can answer sooner than this on this machine);
3. the earn endpoint at a steady half of its measured throughput, latency counted from when each
   request was due (a till's experience on a busy day, not at saturation).

Settings: BENCH_CLIENTS (16), BENCH_SECONDS per round (10), BENCH_ROUNDS (2), BENCH_WORKERS
(2 × cores), BENCH_PORT (8765), BENCH_MEMBERS (1,000,000), BENCH_SAMPLE (members the clients pick
from at random, 50,000).
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
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
WORKERS = int(os.environ.get("BENCH_WORKERS", str(2 * (os.cpu_count() or 1))))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "1000000"))
SAMPLE = int(os.environ.get("BENCH_SAMPLE", "50000"))
DOMAIN = "@bench.example"
CHUNK = 50_000
HOST = "127.0.0.1"
NOOP = "/api/bench/noop/"


def members_generate(cursor, have: int, want: int) -> None:
    """Bench members and their accounts, generated in SQL (the services would take hours)."""
    from tqdm import tqdm

    with tqdm(total=want, initial=have, desc="bench members", unit="member") as bar:
        for start in range(have, want, CHUNK):
            end = min(start + CHUNK, want)
            cursor.execute(
                """
                WITH member AS (
                    INSERT INTO members_member (public_id, external_id, first_name, last_name,
                        email, status, enrolled_at, enrolled_channel, locale, phone, profile,
                        updated_at)
                    SELECT gen_random_uuid(), '', 'Bench', n::text, 'm' || n || %s, 'active',
                           now() - (n %% 1500) * interval '1 day', 'bench', '', '', '{}', now()
                    FROM generate_series(%s, %s) AS n
                    RETURNING id
                )
                INSERT INTO ledger_account (member_id, balance, pending, held, created_at,
                    updated_at)
                SELECT id, 0, 0, 0, now(), now() FROM member
                """,
                [DOMAIN, start, end - 1],
            )
            bar.update(end - start)


def history_generate(cursor) -> None:
    """One earlier purchase for each bench member without one (a 0.50 purchase: no points).

    Most purchases at a till are not a member's first, which runs extra steps (the welcome
    bonus, the referral reward); the bench measures the common case.
    """
    from tqdm import tqdm

    cursor.execute(
        "SELECT min(id), max(id) FROM members_member WHERE email LIKE %s", ["%" + DOMAIN]
    )
    low, high = cursor.fetchone()
    if low is None:
        return
    with tqdm(total=high - low + 1, desc="purchase history", unit="member") as bar:
        for start in range(low, high + 1, CHUNK):
            cursor.execute(
                """
                INSERT INTO ledger_purchase (member_id, channel, store, external_id, amount,
                    currency, occurred_at, created_at, status)
                SELECT m.id, 'bench-history', 'S1', m.id::text, 0.50, 'EUR',
                       now() - interval '30 days', now() - interval '30 days', 'recorded'
                FROM members_member m
                WHERE m.id BETWEEN %s AND %s AND m.email LIKE %s
                  AND NOT EXISTS (SELECT 1 FROM ledger_purchase p WHERE p.member_id = m.id)
                """,
                [start, min(start + CHUNK - 1, high), "%" + DOMAIN],
            )
            bar.update(min(CHUNK, high + 1 - start))


def prepare() -> tuple[str, list[str]]:
    """A fresh key for the bench channel and a random sample of the bench members' public ids."""
    import django

    django.setup()
    from django.db import connection, transaction

    from campaigns.models import EarningRule
    from loyalty_site.models import SCOPES, Channel, ChannelAPIKey

    channel, _created = Channel.objects.get_or_create(
        name="bench", defaults={"kind": "pos", "scopes": list(SCOPES)}
    )
    ChannelAPIKey.objects.filter(channel=channel).update(revoked=True)
    _api_key, key = ChannelAPIKey.objects.create_key(name="bench", channel=channel)
    EarningRule.objects.get_or_create(
        name="Bench base rate", defaults={"kind": EarningRule.Kind.RATE, "rate": Decimal(1)}
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM members_member WHERE email LIKE %s", ["%" + DOMAIN])
        have = cursor.fetchone()[0]
        if have < MEMBERS:
            members_generate(cursor, have, MEMBERS)
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM members_member m WHERE m.email LIKE %s AND NOT EXISTS "
            "(SELECT 1 FROM ledger_purchase p WHERE p.member_id = m.id))",
            ["%" + DOMAIN],
        )
        if cursor.fetchone()[0]:
            history_generate(cursor)
            for table in ("members_member", "ledger_account", "ledger_purchase"):
                cursor.execute(f"ANALYZE {table}")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT public_id FROM members_member WHERE email LIKE %s ORDER BY random() LIMIT %s",
            ["%" + DOMAIN, SAMPLE],
        )
        ids = [str(row[0]) for row in cursor.fetchall()]
        cursor.execute("SELECT count(*) FROM members_member")
        total = cursor.fetchone()[0]
    print(f"{total:,} members in the bench database; clients pick from {len(ids):,} of them")
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


def drive(path: str, key: str, members: list[str], seconds: float, rate: float = 0) -> dict:
    """CLIENTS clients for `seconds`; with `rate` (req/s in all) each sends on a fixed schedule
    and a latency counts from when its request was due, else each sends as fast as it can."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    began = time.monotonic()
    stop_at = began + seconds
    run = uuid.uuid4().hex[:8]
    interval = CLIENTS / rate if rate else 0

    def client(n: int) -> None:
        rng = random.Random(n)
        mine, codes = [], {}
        due = began + interval * n / CLIENTS  # paced clients start spread over one interval
        i = 0
        while True:
            if interval:
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            if time.monotonic() >= stop_at:
                break
            i += 1
            if path != NOOP:
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
                method = "POST"
            else:
                body, method = None, "GET"
            started = due if interval else time.monotonic()
            conn = http.client.HTTPConnection(HOST, PORT, timeout=30)
            conn.request(
                method,
                path,
                body=body,
                headers={"Authorization": f"Api-Key {key}", "Content-Type": "application/json"},
            )
            response = conn.getresponse()
            response.read()
            conn.close()
            mine.append(time.monotonic() - started)
            codes[response.status] = codes.get(response.status, 0) + 1
            due += interval
        with lock:
            latencies.extend(mine)
            for code, count in codes.items():
                statuses[code] = statuses.get(code, 0) + count

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "statuses": statuses, "seconds": time.monotonic() - began}


def summary(runs: list[dict], ok: int) -> dict:
    latencies = sorted(latency for r in runs for latency in r["latencies"])
    statuses: dict[int, int] = {}
    for r in runs:
        for code, count in r["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    return {
        "rps": statuses.get(ok, 0) / sum(r["seconds"] for r in runs),
        "p50": statistics.median(latencies) * 1000 if latencies else 0,
        "p99": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000 if latencies else 0,
        "statuses": statuses,
    }


def main() -> None:
    key, members = prepare()
    server = start_server()
    targets = {"api": "/api/v1/purchases/", "sql": "/api/bench/earn/"}
    try:
        for path in [*targets.values(), NOOP]:
            drive(path, key, members, 2)  # warm the workers' connections and caches
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        for _round in range(ROUNDS):
            for name, path in targets.items():
                runs[name].append(drive(path, key, members, SECONDS))
        results = {name: summary(r, 201) for name, r in runs.items()}
        results["noop"] = summary([drive(NOOP, key, members, SECONDS)], 200)
        steady = results["api"]["rps"] / 2
        results["steady"] = summary([drive(targets["api"], key, members, SECONDS, steady)], 201)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    print()
    print(
        f"earn bench: {CLIENTS} clients, {ROUNDS} rounds of {SECONDS:.0f} s, gunicorn {WORKERS} "
        f"sync workers, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    print(f"{'target':<40}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}  statuses")
    labels = {
        "api": "POST /api/v1/purchases/",
        "sql": "hand-written SQL view",
        "noop": "floor: Django view, no database",
        "steady": f"POST /api/v1/purchases/ at {steady:.0f}/s",
    }
    for name, r in results.items():
        print(
            f"{labels[name]:<40}{r['rps']:>8.0f}{r['p50']:>9.1f}{r['p99']:>9.1f}  {r['statuses']}"
        )
    ratio = results["api"]["rps"] / results["sql"]["rps"] if results["sql"]["rps"] else 0
    print(f"throughput ratio api/sql: {ratio:.2f} (goal ≥ 0.6; p99 goal ≤ 30 ms)")


if __name__ == "__main__":
    main()
