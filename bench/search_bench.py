"""Benchmark: the back office's member search (``/members/?q=``) by card number (printed with
spaces and typed without), e-mail, phone and name prefix; goal: p95 at most 100 ms each.

    BENCH_DATA_URL=postgres://…/loyalty_benchdata .venv/bin/python bench/search_bench.py

Each search is the page itself through Django's test Client (logged in as a superuser), for
members spread over the data set; the reference is a plain indexed SELECT of the same member(s)
on the same connection.
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import figures  # noqa: E402

figures.django_setup()

from urllib.parse import urlencode  # noqa: E402

from django.db import connection  # noqa: E402

from members.models import Card, Member  # noqa: E402

REPEAT = int(os.environ.get("BENCH_SEARCH_REPEAT", "30"))


def _spaced(number: str) -> str:
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


def _searches(members: list[Member]) -> dict[str, list[tuple[str, str, list]]]:
    """Per kind of search: (term typed, reference SQL, its parameters) for each member."""
    searches = {"card with spaces": [], "card": [], "e-mail": [], "phone": [], "name prefix": []}
    by_card = """SELECT m.id, m.first_name, m.last_name FROM members_card c
                 JOIN members_member m ON m.id = c.member_id WHERE c.number = %s"""
    for member in members:
        number = Card.objects.filter(member=member, status="active").values_list(
            "number", flat=True
        )[0]
        searches["card with spaces"].append((_spaced(number), by_card, [number]))
        searches["card"].append((number, by_card, [number]))
        searches["e-mail"].append(
            (
                member.email.upper(),
                "SELECT id, first_name, last_name FROM members_member WHERE lower(email) = %s",
                [member.email.lower()],
            )
        )
        searches["phone"].append(
            (
                "0" + str(member.phone)[3:],  # typed the Dutch way: 06…
                "SELECT id, first_name, last_name FROM members_member WHERE phone = %s",
                [str(member.phone)],
            )
        )
        prefix = member.last_name[:4]
        searches["name prefix"].append(
            (
                prefix,
                """SELECT id, first_name, last_name FROM members_member
                   WHERE lower(last_name) LIKE %s ORDER BY last_name, id LIMIT 26""",
                [prefix.lower() + "%"],
            )
        )
    return searches


def main() -> None:
    client = figures.admin_client()
    count = figures.members_generated()
    picks = [f"G{max(1, count * share // 10)}" for share in (1, 3, 5, 7, 9)]
    members = list(Member.objects.filter(external_id__in=picks))
    for kind, cases in _searches(members).items():
        page, plain = [], []
        for term, sql, params in cases:
            url = "/members/?" + urlencode({"q": term})
            response = client.get(url)
            if response.status_code not in (200, 302):
                raise SystemExit(f"{url} answered {response.status_code}")
            if kind != "name prefix" and response.status_code != 302:
                print(f"warning: {kind} {term!r} did not open one member's page")
            page += figures.samples_ms(
                lambda url=url: client.get(url), repeat=REPEAT // len(cases) + 1
            )

            def select(sql=sql, params=params):
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    cursor.fetchall()

            plain += figures.samples_ms(select, repeat=REPEAT // len(cases) + 1)
        figures.report(
            f"member search by {kind} ({count:,} members), p95",
            figures.p95(page),
            "ms",
            reference=figures.p95(plain),
            goal=100,
            note=f"median {figures.median(page):.0f} ms",
        )


if __name__ == "__main__":
    main()
