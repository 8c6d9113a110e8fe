"""Benchmark: back-office pages on the generated data set (goal: 200 ms, a bounded number of
queries, no full COUNT(*)).

    BENCH_DATA_URL=postgres://…/loyalty_benchdata .venv/bin/python bench/pages_bench.py
    BENCH_PAGES=dashboard …  (only the pages whose name contains a word of this list)

Through Django's test Client logged in as a superuser: the member page of a member with a
typical history, the dashboard, and the admin changelists of ledger entries, members and
purchases (their first page, and the member list searched by e-mail). Prints median and p95 ms
and the number of queries; the reference is the same page's SQL replayed on the connection
(what the database spends), so the ratio is the price of the Python around it.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import figures  # noqa: E402

figures.django_setup()

from members.models import Member  # noqa: E402

REPEAT = int(os.environ.get("BENCH_PAGE_REPEAT", "20"))
# Only the pages whose name contains one of these comma-separated words ("dashboard").
ONLY = [word.strip() for word in os.environ.get("BENCH_PAGES", "").split(",") if word.strip()]


def main() -> None:
    client = figures.admin_client()
    members = figures.members_generated()
    # A member from the middle of the set: a typical history, not the first rows read.
    member = Member.objects.filter(external_id=f"G{members // 2}").first() or Member.objects.first()
    pages = [
        ("member page", f"/members/{member.pk}/"),
        ("dashboard", "/"),
        ("admin: ledger entries", "/admin/ledger/entry/"),
        ("admin: members", "/admin/members/member/"),
        ("admin: members searched by e-mail", f"/admin/members/member/?q={member.email}"),
        ("admin: purchases", "/admin/ledger/purchase/"),
    ]
    if ONLY:
        pages = [(name, url) for name, url in pages if any(word in name for word in ONLY)]
    for name, url in pages:
        sample = figures.page_sample(client, url, repeat=REPEAT)
        note = f"p95 {sample['p95']:.0f} ms, {sample['queries']} queries"
        if sample["full_counts"]:
            note += f", {len(sample['full_counts'])} full COUNT(*)"
        figures.report(
            f"{name} ({members:,} members), median",
            sample["median"],
            "ms",
            reference=sample["sql_median"],
            goal=200,
            note=note,
        )
        for query in sample["slowest"]:
            print(f"    slowest query {float(query['time']) * 1000:.0f} ms: {query['sql'][:160]}")


if __name__ == "__main__":
    main()
