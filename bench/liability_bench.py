"""Benchmark: finance's liability report and per-member export against PostgreSQL's COPY.

    DATABASE_URL=... .venv/bin/python bench/liability_bench.py [--rounds 3] [--generate N]

Runs against whatever DATABASE_URL names (the demo data, or a bench database), as of now.
``--generate N`` first adds bench members up to N (``@liability.bench.example``), each with an
account and six earns with their lots, written by SQL (once; a second run finds them):

- the liability report (``liability_at``: totals, by expiry month, by tier, debt, pending,
  held), timed against ``COPY (SELECT …) TO STDOUT`` of the same figures by expiry month and
  by tier in plain SQL;
- the per-member export as CSV of every member with points or debt (``exports.member_table``
  through ``csv_lines``, written to a temporary file), timed against ``COPY`` of one query that
  gives the same rows (member, an active card, tier, outstanding, debt, value, and the points
  per expiry month as one text column), and its peak resident memory (VmHWM) after half the
  rows and after all of them: it must not grow with the members.

Each time is the best of ``--rounds`` (3; 2 from half a million members on, where a round of
the export and its COPY takes minutes); the memory is that of the export's last round, read
after half the rows and at its end. The ratio printed is product ÷ COPY; the goal is ≤ 2×, and
the peak after all rows at most 1.1× the peak after half of them.
"""

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import figures  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from ledger.finance import exports  # noqa: E402
from ledger.finance.liability import liability_at  # noqa: E402
from ledger.finance.values import value_at  # noqa: E402

REPORT_SQL = """
SELECT 'month', date_trunc('month', lot.expires_at AT TIME ZONE %(zone)s)::date::text,
       SUM(lot.remaining)
FROM ledger_lot lot WHERE lot.remaining > 0 AND lot.earned_at <= %(as_of)s
GROUP BY 2
UNION ALL
SELECT 'tier', member.tier_id::text, SUM(lot.remaining)
FROM ledger_lot lot
JOIN ledger_account account ON account.id = lot.account_id
JOIN members_member member ON member.id = account.member_id
WHERE lot.remaining > 0 AND lot.earned_at <= %(as_of)s
GROUP BY 2
UNION ALL
SELECT 'debt', COUNT(*)::text, -SUM(balance) FROM ledger_account WHERE balance < 0
"""

MEMBERS_SQL = """
SELECT member.public_id,
       (SELECT card.number FROM members_card card
        WHERE card.member_id = member.id AND card.status = 'active' ORDER BY card.id LIMIT 1),
       tier.name,
       GREATEST(account.balance, 0),
       GREATEST(-account.balance, 0),
       ROUND(GREATEST(account.balance, 0) * %(value)s, 2),
       (SELECT string_agg(month || ':' || points, ';' ORDER BY month)
        FROM (SELECT date_trunc('month', lot.expires_at AT TIME ZONE %(zone)s)::date::text AS month,
                     SUM(lot.remaining) AS points
              FROM ledger_lot lot WHERE lot.account_id = account.id AND lot.remaining > 0
              GROUP BY 1) months)
FROM ledger_account account
JOIN members_member member ON member.id = account.member_id
LEFT JOIN members_tier tier ON tier.id = member.tier_id
WHERE account.balance <> 0
ORDER BY account.id
"""

DOMAIN = "liability.bench.example"
EARNS = 6  # per generated member: 50, 100, … points, a month apart


def generate(count: int) -> None:
    from members.models import Member

    have = Member.objects.filter(email__endswith=f"@{DOMAIN}").count()
    if have >= count:
        return
    print(f"generating {count - have} members with {EARNS} earns each …", flush=True)
    began = time.monotonic()
    for start in range(have, count, 10_000):
        Member.objects.bulk_create(
            Member(email=f"l{n}@{DOMAIN}", first_name="Bench", last_name=str(n))
            for n in range(start, min(start + 10_000, count))
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ledger_account (balance, pending, held, created_at, updated_at,"
            " member_id) SELECT %s, 0, 0, now(), now(), m.id FROM members_member m"
            " WHERE m.email LIKE %s AND NOT EXISTS"
            " (SELECT 1 FROM ledger_account a WHERE a.member_id = m.id)",
            [25 * EARNS * (EARNS + 1), f"%@{DOMAIN}"],
        )
        cursor.execute(
            "INSERT INTO ledger_entry (kind, amount, balance_after, channel, reference, reason,"
            " explanation, created_at, account_id, reason_code, reason_params)"
            " SELECT 'earn', 50 * g, 25 * g * (g + 1), 'bench', 'liability-bench', '', '[]',"
            " now() - make_interval(days => 30 * (%s - g) + 1), a.id, '', '{}'"
            " FROM ledger_account a JOIN members_member m ON m.id = a.member_id"
            " CROSS JOIN generate_series(1, %s) g"
            " WHERE m.email LIKE %s AND NOT EXISTS"
            " (SELECT 1 FROM ledger_entry e WHERE e.account_id = a.id)",
            [EARNS, EARNS, f"%@{DOMAIN}"],
        )
        cursor.execute(
            "INSERT INTO ledger_lot (points, remaining, earned_at, expires_at, account_id,"
            " entry_id) SELECT e.amount, e.amount, e.created_at,"
            " e.created_at + interval '24 months', e.account_id, e.id FROM ledger_entry e"
            " WHERE e.reference = 'liability-bench' AND NOT EXISTS"
            " (SELECT 1 FROM ledger_lot l WHERE l.entry_id = e.id)"
        )
        cursor.execute("ANALYZE")
    print(f"  {time.monotonic() - began:.0f} s", flush=True)


def peak_reset() -> None:
    """Start the process's peak resident memory afresh (Linux: clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def copy_seconds(sql: str, params: dict) -> tuple[float, int]:
    """Time ``COPY (sql) TO STDOUT`` read to the end; returns (seconds, bytes)."""
    with connection.cursor() as cursor:
        # COPY takes no bound parameters: quoted into its text, as a client-side cursor does.
        query = psycopg.ClientCursor(connection.connection).mogrify(sql, params)
        began, size = time.monotonic(), 0
        with cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                size += len(block)
    return time.monotonic() - began, size


def export(as_of, target, halfway: int = 0) -> tuple[int, float]:
    """Write the export to ``target``; returns (rows, peak resident MB after ``halfway`` rows)."""
    count, half = -1, float("nan")
    for line in exports.csv_lines(exports.member_table(as_of=as_of)):
        target.write(line)
        count += 1
        if count == halfway:
            half = peak_mb()
    return count, half


def best(rounds: int, run):
    times, result = [], None
    for _ in range(rounds):
        began = time.monotonic()
        result = run()
        times.append(time.monotonic() - began)
    return min(times), result


def against_copy(figure: str, seconds: float, copy_s: float, note: str) -> None:
    """A figure in seconds against its COPY; the goal: at most twice as long."""
    figures.report(figure, seconds, "s", reference=copy_s, goal_ratio=2, note=note)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, help="3, or 2 from half a million members on")
    parser.add_argument("--generate", type=int, default=0, help="bench members to add (once)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("the liability bench needs PostgreSQL (COPY)")
    if args.generate > 100_000:
        sys.exit("--generate: at most 100,000 members")
    if args.generate:
        generate(args.generate)
    as_of = timezone.now()
    params = {
        "as_of": as_of,
        "zone": settings.TIME_ZONE,
        "value": value_at(as_of).value,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM members_member")
        members = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*), COUNT(*) FILTER (WHERE remaining > 0) FROM ledger_lot")
        lots, open_lots = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM ledger_account WHERE balance <> 0")
        holding = cursor.fetchone()[0]
    # At a million members a round of the export and its COPY takes about three minutes.
    rounds = args.rounds or (3 if members < 500_000 else 2)
    print(f"{members} members, {lots} lots ({open_lots} open), as of {as_of:%Y-%m-%d %H:%M};"
          f" best of {rounds}")  # fmt: skip

    report_s, report = best(rounds, lambda: liability_at(as_of=as_of))
    copy_s, _size = min(copy_seconds(REPORT_SQL, params) for _ in range(rounds))
    against_copy(
        f"liability report ({members:,} members, {open_lots:,} open lots)",
        report_s,
        copy_s,
        f"{report.points:,} points, {len(report.by_expiry_month)} expiry months,"
        f" {len(report.by_tier)} tiers; reference: COPY of the same figures",
    )

    halfway = max(holding // 2, 1)
    memory = []
    with tempfile.TemporaryFile("w+", encoding="utf-8") as target:

        def once():
            target.seek(0)
            peak_reset()
            rows, half = export(as_of, target, halfway)
            memory.append((half, peak_mb()))
            return rows

        export_s, rows = best(rounds, once)
        size = target.tell()
    copy_s, copy_size = min(copy_seconds(MEMBERS_SQL, params) for _ in range(rounds))
    against_copy(
        f"per-member export, CSV ({rows:,} rows)",
        export_s,
        copy_s,
        f"{size / 1e6:.0f} MB, {rows / export_s:,.0f} rows/s;"
        f" reference: COPY of the same rows, {copy_size / 1e6:.0f} MB",
    )
    half, whole = memory[-1]
    figures.report(
        "per-member export, peak memory (VmHWM) after all rows",
        whole,
        "MB",
        # Bounded: what the process held after half the rows is the reference.
        reference=half,
        goal_ratio=1.1,
        note=f"{half:.0f} MB after {halfway:,} rows, {whole:.0f} MB after {rows:,}",
    )


if __name__ == "__main__":
    main()
