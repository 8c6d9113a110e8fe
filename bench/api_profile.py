"""CPU per channel-API answer inside one process, and where it goes: the complement of
bench/api_earn.py's wrk figures that moves least when the machine is busy (CPU time, not wall
time, and no load generator on the same cores).

    DATABASE_URL=postgres://…/loyalty_prof .venv/bin/python bench/api_profile.py earn 500
    DATABASE_URL=… .venv/bin/python bench/api_profile.py get 1000 --profile [--top 40]

Prepares a channel key, a one-rule programme and 200 members with one earlier purchase in the
database of DATABASE_URL (created once, reused; use a scratch database), then sends `N`
requests through Django's test client (`earn`: POST /api/v1/purchases/ with an
Idempotency-Key; `get`: GET /api/v1/members/{id}/) and prints the process CPU milliseconds per
answer, and the CPU the database server's backend of the same connection spent meanwhile (read
from /proc: the database must run on this machine); `--profile` adds cProfile's table (by
cumulative CPU time, or `--sort tottime`). The test client's own overhead (about 1 ms) is
included.
"""

import argparse
import cProfile
import json
import os
import pstats
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")


def prepare():
    from django.db import connection

    from campaigns.models import EarningRule
    from loyalty_site.models import SCOPES, Channel, ChannelAPIKey
    from members.models import Member

    channel, _ = Channel.objects.get_or_create(
        name="bench", defaults={"kind": "pos", "scopes": list(SCOPES)}
    )
    _api_key, key = ChannelAPIKey.objects.create_key(name="bench-profile", channel=channel)
    EarningRule.objects.get_or_create(
        name="Bench base rate", defaults={"kind": EarningRule.Kind.RATE, "rate": Decimal(1)}
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM members_member WHERE email LIKE '%%@profile.example'")
        if cursor.fetchone()[0] < 200:
            cursor.execute(
                """
                WITH member AS (
                    INSERT INTO members_member (public_id, external_id, first_name, last_name,
                        email, status, enrolled_at, enrolled_channel, locale, phone, profile,
                        updated_at)
                    SELECT gen_random_uuid(), '', 'Bench', n::text, 'p' || n || '@profile.example',
                           'active', now() - interval '100 days', 'bench', '', '', '{}', now()
                    FROM generate_series(1, 200) AS n
                    RETURNING id
                )
                INSERT INTO ledger_account (member_id, balance, pending, held, created_at,
                    updated_at)
                SELECT id, 0, 0, 0, now(), now() FROM member
                """
            )
            cursor.execute(
                """
                INSERT INTO ledger_purchase (member_id, channel, store, external_id, amount,
                    currency, occurred_at, created_at, status)
                SELECT m.id, 'bench-history', 'S1', 'profile-' || m.id, 0.50, 'EUR',
                       now() - interval '30 days', now() - interval '30 days', 'recorded'
                FROM members_member m WHERE m.email LIKE '%%@profile.example'
                """
            )
    ids = [
        str(public_id)
        for public_id in Member.objects.filter(email__endswith="@profile.example").values_list(
            "public_id", flat=True
        )
    ]
    return key, ids


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _cpu_seconds(pid: int) -> float:
    """User and system CPU of process `pid` (the database server's backend of this process's
    connection, on this machine), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["earn", "get"])
    parser.add_argument("n", type=int, nargs="?", default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="cumulative", help="cProfile's order (tottime: self)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.test import Client

    key, ids = prepare()
    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}", HTTP_HOST="localhost")
    run = uuid.uuid4().hex[:8]

    def earn(i):
        ref = f"{run}-{i}"
        body = {
            "member": ids[i % len(ids)],
            "external_id": ref,
            "amount": "25.00",
            "currency": "EUR",
            "store": "S1",
            "lines": [{"sku": "SKU1", "category": "c", "quantity": 1, "amount": "25.00"}],
        }
        answer = client.post(
            "/api/v1/purchases/",
            json.dumps(body),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY=ref,
        )
        assert answer.status_code == 201, (answer.status_code, answer.content[:300])

    def get(i):
        answer = client.get(f"/api/v1/members/{ids[i % len(ids)]}/")
        assert answer.status_code == 200, (answer.status_code, answer.content[:300])

    request = earn if args.what == "earn" else get
    for i in range(20):  # warm: connections, caches, imports
        request(i)
    profile = cProfile.Profile(time.process_time)
    backend = _backend_pid()
    database_started = _cpu_seconds(backend)
    started = time.process_time()
    if args.profile:
        profile.enable()
    for i in range(20, 20 + args.n):
        request(i)
    profile.disable()
    cpu_ms = (time.process_time() - started) * 1000 / args.n
    database_ms = (_cpu_seconds(backend) - database_started) * 1000 / args.n
    print(
        f"{args.what}: {cpu_ms:.2f} ms of CPU per answer, and {database_ms:.2f} ms of the "
        f"database server's ({args.n} answers{', under the profiler' if args.profile else ''})"
    )
    if args.profile:
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    main()
