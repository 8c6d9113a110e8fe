"""The ledger page's queries read through indexes: EXPLAIN them on a ledger of ~200k entries.

    DATABASE_URL=postgres://.../loyalty_explain .venv/bin/python bench/ledger_page_explain.py

On a migrated scratch database (never production's: it writes rows that nothing reconciles)
it adds 2,000 members with 100 entries each, ANALYZEs, then runs each search of /ledger/
(ledger.selectors.entries_search, as the page calls it) under EXPLAIN ANALYZE, prints each
plan's nodes and time, and exits 1 if a member or reference search reads ledger_entry by
Seq Scan.
"""

import os
import random
import sys
from datetime import timedelta
from pathlib import Path

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty_site.settings")
django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from ledger import selectors  # noqa: E402
from ledger.models import Account, Entry  # noqa: E402
from members.models import Member  # noqa: E402

MEMBERS, PER_MEMBER = 2_000, 100
CHANNELS = ["pos-amsterdam", "pos-utrecht", "webshop", "app"]


def ledger_fill() -> None:
    if Entry.objects.count() >= MEMBERS * PER_MEMBER:
        return
    now = timezone.now()
    rng = random.Random(14)
    members = Member.objects.bulk_create(
        Member(first_name="Explain", last_name=f"Member {n}", email=f"explain-{n}@example.nl")
        for n in range(MEMBERS)
    )
    accounts = Account.objects.bulk_create(Account(member=m) for m in members)
    for account in accounts:
        Entry.objects.bulk_create(
            Entry(
                account=account,
                kind=Entry.Kind.EARN,
                amount=10,
                balance_after=10 * (n + 1),
                channel=rng.choice(CHANNELS),
                reference=f"receipt-{account.pk}-{n}",
                created_at=now - timedelta(minutes=rng.randrange(0, 60 * 24 * 365)),
            )
            for n in range(PER_MEMBER)
        )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def explain(title: str, *, must_use_index: bool, **search) -> bool:
    with CaptureQueriesContext(connection) as captured:
        selectors.entries_search(limit=51, **search)
    sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = [row[0] for row in cursor.fetchall()]
    seq = any("Seq Scan on ledger_entry" in line for line in plan)
    nodes = [line.strip() for line in plan if "Scan" in line or "Sort" in line]
    print(f"\n== {title}: {plan[-1].strip()}")
    for line in nodes:
        print("   ", line[:150])
    ok = not (must_use_index and seq)
    if not ok:
        print("    !! Seq Scan on ledger_entry")
    return ok


def main() -> int:
    ledger_fill()
    print(f"{Entry.objects.count():,} entries, {Account.objects.count():,} accounts")
    member = Member.objects.filter(email="explain-777@example.nl").values_list("pk", flat=True)
    some = Entry.objects.filter(account__member_id__in=list(member)).order_by("pk")[5]
    newest = selectors.entries_search(limit=51)[-1]
    today = timezone.now()
    checks = [
        explain("one member", must_use_index=True, member_ids=list(member)),
        explain(
            "one member, older page",
            must_use_index=True,
            member_ids=list(member),
            before=(some.created_at, some.pk),
        ),
        explain("a reference", must_use_index=True, reference=some.reference),
        explain("everything, newest", must_use_index=False),
        explain(
            "everything, older page",
            must_use_index=False,
            before=(newest.created_at, newest.pk),
        ),
        explain(
            "a week",
            must_use_index=False,
            start=today - timedelta(days=14),
            end=today - timedelta(days=7),
        ),
        explain("a channel", must_use_index=False, channel="webshop"),
        explain("a kind", must_use_index=False, kind=Entry.Kind.REDEEM),
    ]
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
