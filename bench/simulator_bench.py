"""Benchmark: the earning-rule simulator on a year of purchases for 100,000 members.

    .venv/bin/python bench/simulator_bench.py [--members 100000] [--per-member 12] [--fresh]

Uses its own PostgreSQL database (BENCH_DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/loyalty_bench), migrates it, loads the data once with COPY
(skipped when it is there already) and times `campaigns.simulator.simulate` over the year with
a realistic rule set, with its peak memory and, in the same run, a PostgreSQL reference (the
same purchases and lines aggregated by one GROUP BY). Goals: a year of 100,000 members in 30 s,
a year of 1,000,000 members (`--members 1000000 --goal 300`, BENCH_DATABASE_URL pointing at a
database with a million members) in 5 minutes, memory not growing with the members.
"""

import argparse
import contextlib
import io
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import figures  # noqa: E402

os.environ["DATABASE_URL"] = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/loyalty_bench"
)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from campaigns.models import EarningRule  # noqa: E402
from campaigns.simulator import simulate  # noqa: E402
from ledger.models import Purchase, PurchaseLine  # noqa: E402
from members.models import Member  # noqa: E402

YEAR_START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2026, 1, 1, tzinfo=UTC)
DOMAIN = "bench.example.nl"
PRODUCTS = [
    ("KOF-250", "coffee", 429),
    ("KOF-1KG", "coffee", 1299),
    ("THEE", "tea", 249),
    ("MELK", "dairy", 119),
    ("KAAS", "dairy", 649),
    ("BROOD", "bakery", 259),
    ("APPELS", "produce", 229),
    ("WASMIDDEL", "household", 999),
    ("WIJN", "drinks", 749),
]
STORES = [f"S{n:03d}" for n in range(60)]


def copy_rows(table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(row))
        buffer.write("\n")
    buffer.seek(0)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor underneath Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            while chunk := buffer.read(1 << 20):
                copy.write(chunk)


def members_load(count: int, rng: random.Random) -> list[int]:
    existing = list(
        Member.objects.filter(email__endswith=f"@{DOMAIN}").values_list("pk", flat=True)
    )
    if len(existing) >= count:
        return existing[:count]
    print(f"creating {count} members …", flush=True)
    start = time.monotonic()
    batch = []
    for n in range(len(existing), count):
        batch.append(
            Member(
                email=f"m{n}@{DOMAIN}",
                first_name="Bench",
                last_name=str(n),
                birth_date=datetime(1950, 1, 1).date() + timedelta(days=rng.randrange(20000)),
                enrolled_at=YEAR_START - timedelta(days=rng.randrange(2000)),
            )
        )
        if len(batch) == 10_000:
            Member.objects.bulk_create(batch)
            batch = []
    Member.objects.bulk_create(batch)
    print(f"  {time.monotonic() - start:.1f} s", flush=True)
    return list(Member.objects.filter(email__endswith=f"@{DOMAIN}").values_list("pk", flat=True))


def purchases_load(member_ids: list[int], per_member: int, rng: random.Random) -> None:
    # Every member loaded has at least one purchase: the first one's tell that they are there
    # (the earn bench, which shares the database, records its own under the channel "bench").
    if Purchase.objects.filter(member_id=member_ids[0]).exists():
        return
    print(f"creating ~{len(member_ids) * per_member} purchases with COPY …", flush=True)
    start = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {Purchase._meta.db_table}")
        next_id = cursor.fetchone()[0] + 1
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {PurchaseLine._meta.db_table}")
        next_line = cursor.fetchone()[0] + 1
    seconds = int((YEAR_END - YEAR_START).total_seconds())
    now = datetime.now(UTC).isoformat()
    chunk = 20_000
    for offset in range(0, len(member_ids), chunk):
        purchases, lines = [], []
        for member_id in member_ids[offset : offset + chunk]:
            for _ in range(max(1, int(rng.expovariate(1 / per_member)))):
                at = YEAR_START + timedelta(seconds=rng.randrange(seconds))
                total = 0
                for sku, category, cents in rng.sample(PRODUCTS, rng.randint(1, 3)):
                    quantity = rng.randint(1, 3)
                    amount = cents * quantity
                    total += amount
                    lines.append(
                        (str(next_line), str(next_id), sku, category, str(quantity),
                         str(Decimal(amount) / 100))
                    )  # fmt: skip
                    next_line += 1
                purchases.append(
                    (str(next_id), str(member_id), "bench", rng.choice(STORES), f"B{next_id}",
                     str(Decimal(total) / 100), "EUR", at.isoformat(), now, "recorded")
                )  # fmt: skip
                next_id += 1
        with transaction.atomic():
            copy_rows(
                Purchase._meta.db_table,
                ["id", "member_id", "channel", "store", "external_id", "amount", "currency",
                 "occurred_at", "created_at", "status"],
                purchases,
            )  # fmt: skip
            copy_rows(
                PurchaseLine._meta.db_table,
                ["id", "purchase_id", "sku", "category", "quantity", "amount"],
                lines,
            )
        print(f"  {offset + chunk} members done", flush=True)
    with connection.cursor() as cursor:
        for model in (Purchase, PurchaseLine):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" (SELECT MAX(id) FROM {table}))"
            )
        cursor.execute(f"ANALYZE {Purchase._meta.db_table}")
        cursor.execute(f"ANALYZE {PurchaseLine._meta.db_table}")
    print(f"  {time.monotonic() - start:.1f} s", flush=True)


def bench_rules() -> list[EarningRule]:
    # Inactive: the simulator replays any rule, and live purchases (the API benchmark shares this
    # database) must not earn from these.
    rules = [
        EarningRule(name="Bench: base rate", rate=Decimal(1)),
        EarningRule(
            name="Bench: double coffee",
            kind="multiplier",
            multiplier=2,
            categories=["coffee"],
            stacks=False,
            priority=5,
        ),  # fmt: skip
        EarningRule(
            name="Bench: weekend bonus",
            kind="bonus",
            bonus_points=25,
            days_of_week=[5, 6],
            min_spend=20,
            cap_per_member=100,
            cap_period="month",
        ),  # fmt: skip
        EarningRule(name="Bench: birthday", kind="bonus", bonus_points=100, birthday=True),
        EarningRule(name="Bench: welcome", kind="bonus", bonus_points=50, first_purchase_only=True),
        EarningRule(
            name="Bench: big basket",
            kind="bonus",
            bonus_points=40,
            min_spend=30,
            budget_points=500_000,
        ),  # fmt: skip
    ]
    for rule in rules:
        fields = {
            f.name: getattr(rule, f.name)
            for f in EarningRule._meta.concrete_fields
            if f.name not in {"id", "name", "budget_spent", "created_at"}
        }
        EarningRule.objects.update_or_create(name=rule.name, defaults={**fields, "active": False})
    return list(EarningRule.objects.filter(name__startswith="Bench:").prefetch_related("tiers"))


def peak_reset() -> None:
    """Start the process's peak resident memory afresh (Linux: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reference_seconds() -> float:
    """The same purchases and lines read and aggregated by PostgreSQL alone: one GROUP BY per
    member of the points a base rate and a category multiplier give (the floor of what any
    replay must pay to read them)."""
    began = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*), SUM(points) FROM (SELECT p.member_id, SUM(FLOOR(p.amount))"
            f" + SUM((SELECT COALESCE(SUM(FLOOR(l.amount)), 0) FROM"
            f" {PurchaseLine._meta.db_table} l WHERE l.purchase_id = p.id"
            f" AND l.category = 'coffee')) AS points FROM {Purchase._meta.db_table} p"
            " WHERE p.occurred_at >= %s AND p.occurred_at < %s AND p.status <> 'rejected'"
            " GROUP BY p.member_id) t",
            [YEAR_START, YEAR_END],
        )
        cursor.fetchone()
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--per-member", type=int, default=12)
    parser.add_argument("--goal", type=float, default=30.0, help="seconds")
    args = parser.parse_args()
    call_command("ensure_database")
    connection.close()
    call_command("migrate", verbosity=0)
    rng = random.Random(2026)
    member_ids = members_load(args.members, rng)
    purchases_load(member_ids, args.per_member, rng)
    del member_ids
    rules = bench_rules()
    count = Purchase.objects.filter(occurred_at__gte=YEAR_START, occurred_at__lt=YEAR_END).count()
    members = Member.objects.count()
    if not count:
        raise SystemExit("no purchases in the simulated year: the data did not load")
    print(f"simulating {count} purchases of {members} members (a year) …", flush=True)
    reference = reference_seconds()
    peak_reset()
    cpu = time.process_time()
    with transaction.atomic():  # server-side cursors need a transaction
        report = simulate(start=YEAR_START, end=YEAR_END, rules=rules, per_member=False)
    cpu = time.process_time() - cpu
    peak = peak_mb()
    reference = min(reference, reference_seconds())
    print(f"points {report.points}, members reached {report.members_reached}, cost {report.cost}")
    for name, points in sorted(report.points_by_rule.items()):
        print(f"  {name}: {points}")
    figures.report(
        f"simulator, a year of {args.members:,} members ({report.purchases:,} purchases)",
        report.seconds,
        "s",
        reference=reference,
        goal=args.goal,
        note=f"{cpu:.1f} s CPU, {report.purchases / report.seconds:,.0f} purchases/s,"
        f" peak memory {peak:.0f} MB; reference: one SQL GROUP BY of the same purchases and lines",
    )


if __name__ == "__main__":
    main()
