"""The channel API against its reference, driven by wrk (a load generator in C).

Run by `make bench` (bench/run), or `python bench/api_earn.py` with DATABASE_URL set. Prepares a
channel, a one-rule programme and a million members (generated in SQL once, then reused) in the
bench database; starts two gunicorns with the product's gunicorn.conf.py (same workers, same
worker class): the product (loyalty_site.wsgi) and the reference (bench/reference: Django + DRF,
no middleware, an earn's writes in hand-written SQL on the same tables); then runs wrk
(bench/wrk/*.lua) against each in alternating rounds, so that a slower minute of the shared
machine does not favour one, and prints req/s, p50 and p99 of each and their ratio:

1. `POST /api/v1/purchases/` (unique purchase reference and Idempotency-Key per request, a
   random member of the sample) under BENCH_CONNECTIONS (16) connections: throughput;
2. the same under BENCH_LATENCY_CONNECTIONS (4) connections: p99 below saturation;
3. `GET /api/v1/members/{id}/` under 16 connections;
4. the floor: the reference's view without database, under 16 connections.

Settings: BENCH_SECONDS per round (10), BENCH_ROUNDS (2), BENCH_PORT (8765; the reference
BENCH_PORT + 1), BENCH_MEMBERS (1,000,000), BENCH_SAMPLE (members wrk picks from, 50,000),
BENCH_WRK_THREADS (2). gunicorn's own variables (WEB_CONCURRENCY, WEB_THREADS) reach both
servers alike. The reference keeps Django's database defaults (client-side binding, no prepared
statements); BENCH_REFERENCE_PREPARED=true gives it the product's server-side binding.
"""

import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
LATENCY_CONNECTIONS = int(os.environ.get("BENCH_LATENCY_CONNECTIONS", "4"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
PORT = int(os.environ.get("BENCH_PORT", "8765"))
MEMBERS = int(os.environ.get("BENCH_MEMBERS", "1000000"))
SAMPLE = int(os.environ.get("BENCH_SAMPLE", "50000"))
WRK_THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
DOMAIN = "@bench.example"
CHUNK = 50_000
HOST = "127.0.0.1"
WRK_DIR = ROOT / "bench" / "wrk"
APPS = {"product": "loyalty_site.wsgi:application", "reference": "bench.reference.wsgi:application"}


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
                    FROM generate_series(%s::int, %s::int) AS n
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
    print(f"{total:,} members in the bench database; wrk picks from {len(ids):,} of them")
    connection.close()
    return key, ids


def start_servers() -> dict[str, subprocess.Popen]:
    env = {
        **os.environ,
        "LOYALTY_API_RATE": "10000000/min",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    servers = {}
    for n, (name, app) in enumerate(APPS.items()):
        servers[name] = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "--config", str(ROOT / "gunicorn.conf.py"),
             "--bind", f"{HOST}:{PORT + n}", "--log-level", "warning", app],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    deadline = time.monotonic() + 180
    for n, server in enumerate(servers.values()):
        while True:
            try:
                urllib.request.urlopen(f"http://{HOST}:{PORT + n}/healthz", timeout=2)
                break
            except urllib.error.HTTPError:
                break  # it answered
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    stop(servers)
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.2)
    return servers


def stop(servers: dict[str, subprocess.Popen]) -> None:
    # SIGINT: gunicorn's quick shutdown (the rounds are over; nothing is left to finish).
    for server in servers.values():
        if server.poll() is None:
            server.send_signal(signal.SIGINT)
    for server in servers.values():
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def workers_cpu_seconds(master: int) -> float:
    """CPU time (user + system) the master's workers have used so far, from /proc (Linux)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == master:  # ppid
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def wrk(script: str, port: int, connections: int, seconds: int, env: dict, master: int) -> dict:
    """One wrk round; its done() (bench/wrk/common.lua) prints the figures as one JSON line.

    Also the workers' CPU time per answer: unlike req/s, it hardly moves when other work on the
    machine takes cores away, so it compares product and reference on a busy machine too."""
    cpu_before = workers_cpu_seconds(master)
    out = subprocess.run(
        ["wrk", f"-t{min(WRK_THREADS, connections)}", f"-c{connections}", f"-d{seconds}s",
         "--timeout", "10s", "-s", str(WRK_DIR / script), f"http://{HOST}:{port}"],
        env={**env, "WRK_RUN": uuid.uuid4().hex[:12]}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(x for x in out.splitlines() if x.startswith("WRK_JSON "))
    r = json.loads(line.removeprefix("WRK_JSON "))
    ok = r["requests"] - r["non_2xx_or_3xx"]
    cpu = workers_cpu_seconds(master) - cpu_before
    return {
        "cpu_ms": cpu * 1000 / ok if ok else 0,
        "rps": ok / (r["duration_us"] / 1e6),
        "p50": r["p50_us"] / 1000,
        "p99": r["p99_us"] / 1000,
        "failed": r["non_2xx_or_3xx"] + r["socket_errors"],
    }


def combine(rounds: list[dict]) -> dict:
    """Throughput over all rounds; p50 and p99 the mean of the rounds' (wrk gives percentiles
    per round, not the samples)."""
    n = len(rounds)
    return {
        "rps": sum(r["rps"] for r in rounds) / n,
        "p50": sum(r["p50"] for r in rounds) / n,
        "p99": sum(r["p99"] for r in rounds) / n,
        "failed": sum(r["failed"] for r in rounds),
        "cpu_ms": sum(r["cpu_ms"] for r in rounds) / n,
    }


SCENARIOS = [
    # name, wrk script, connections, goal: the product's share of the reference's throughput
    ("POST /api/v1/purchases/", "earn.lua", CONNECTIONS, 0.6),
    ("POST /api/v1/purchases/", "earn.lua", LATENCY_CONNECTIONS, None),
    ("GET /api/v1/members/{id}/", "member.lua", CONNECTIONS, 0.7),
]


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: `make wrk` (or `sudo apt-get install wrk`) installs it"
        )
    key, members = prepare()
    sample = tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False)  # noqa: SIM115
    sample.write("\n".join(members) + "\n")
    sample.close()
    env = {**os.environ, "WRK_API_KEY": key, "WRK_MEMBERS": sample.name, "WRK_DIR": str(WRK_DIR)}
    load_before = os.getloadavg()
    servers = start_servers()
    ports = {name: PORT + n for n, name in enumerate(APPS)}
    results: dict[tuple, dict] = {}
    try:
        for _label, script, _c, _goal in SCENARIOS:
            for name in APPS:  # warm each worker's connection and caches
                wrk(script, ports[name], CONNECTIONS, 2, env, servers[name].pid)
        for label, script, connections, _goal in SCENARIOS:
            runs: dict[str, list[dict]] = {name: [] for name in APPS}
            for n in range(ROUNDS):
                # Alternate which goes first, so that neither always follows the other's writes.
                order = list(APPS) if n % 2 == 0 else list(reversed(APPS))
                for name in order:
                    runs[name].append(
                        wrk(script, ports[name], connections, SECONDS, env, servers[name].pid)
                    )
            for name in APPS:
                results[(label, connections, name)] = combine(runs[name])
        floor = wrk(
            "noop.lua", ports["reference"], CONNECTIONS, SECONDS, env, servers["reference"].pid
        )
    finally:
        stop(servers)
        os.unlink(sample.name)
    load_after = os.getloadavg()
    workers = os.environ.get("WEB_CONCURRENCY", str(2 * (os.cpu_count() or 1)))
    threads = os.environ.get("WEB_THREADS", "1")
    print()
    print(
        f"API bench: wrk, {ROUNDS} alternating rounds of {SECONDS} s per target; gunicorn "
        f"(gunicorn.conf.py) {workers} workers x {threads} threads; {os.cpu_count()} cores "
        f"{platform.machine()}, Python {platform.python_version()}; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    print(
        f"{'target':<34}{'conns':>6}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'failed':>8}"
        f"{'CPU ms/req':>11}"
    )
    for label, _script, connections, goal in SCENARIOS:
        for name in APPS:
            r = results[(label, connections, name)]
            print(
                f"{label + ' ' + name:<34.34}{connections:>6}{r['rps']:>8.0f}{r['p50']:>8.1f}"
                f"{r['p99']:>8.1f}{r['failed']:>8}{r['cpu_ms']:>11.2f}"
            )
        product = results[(label, connections, "product")]
        reference = results[(label, connections, "reference")]
        ratio = product["rps"] / reference["rps"] if reference["rps"] else 0
        cpu_ratio = reference["cpu_ms"] / product["cpu_ms"] if product["cpu_ms"] else 0
        goal_text = f"goal >= {goal}" if goal else "p99 goal <= 30 ms"
        print(
            f"{'  ratio product/reference':<34}{'':>6}{ratio:>8.2f}  ({goal_text}; reference's "
            f"CPU per answer / product's: {cpu_ratio:.2f})"
        )
    print(
        f"{'floor: reference, no database':<34}{CONNECTIONS:>6}{floor['rps']:>8.0f}"
        f"{floor['p50']:>8.1f}{floor['p99']:>8.1f}{floor['failed']:>8}{floor['cpu_ms']:>11.2f}"
    )


if __name__ == "__main__":
    main()
