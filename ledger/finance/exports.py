"""Finance's exports: the summary, by expiry month, by tier, the roll-forward (small tables, as
django-import-export's CSV and XLSX formats) and per member (streamed, bounded memory).

The per-member file is written row by row: CSV as lines of text for a streaming response or a
file, XLSX through openpyxl's write-only workbook (rows go to a temporary file, not to memory).
The page starts it as a background job; ``manage.py liability_report --by member`` writes it
directly.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

import tablib
from django.utils import timezone
from import_export.formats.base_formats import CSV, XLSX

from ledger.finance.liability import Liability
from ledger.finance.per_member import expiry_months, member_rows
from ledger.finance.rollforward import RollForward

FORMATS = {"csv": CSV, "xlsx": XLSX}
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "json": "application/json",
}
BY = ("summary", "expiry_month", "tier", "member")


def _month(month: date | None) -> str:
    return month.strftime("%Y-%m") if month else "never"


def _money(amount: Decimal) -> str:
    return f"{amount.quantize(Decimal('0.01'))}"


def summary_rows(report: Liability) -> list[list]:
    return [
        ["as_of", timezone.localtime(report.as_of).isoformat()],
        ["outstanding_points", report.points],
        ["value", _money(report.money)],
        ["currency", report.value.currency],
        ["value_per_point", str(report.value.value)],
        ["members_in_debt", report.members_in_debt],
        ["debt_points", report.debt_points],
        ["pending_points", report.pending_points],
        ["held_points", report.held_points],
    ]


def dataset(report: Liability, by: str) -> tablib.Dataset:
    """The small tables as a tablib Dataset (summary, expiry_month, tier)."""
    if by == "summary":
        return tablib.Dataset(*summary_rows(report), headers=["figure", "amount"])
    if by == "expiry_month":
        rows = [[_month(m), row.points, _money(row.money)] for m, row in report.by_expiry_month]
        return tablib.Dataset(*rows, headers=["expiry_month", "points", "value"])
    if by == "tier":
        rows = [[t.name if t else "", row.points, _money(row.money)] for t, row in report.by_tier]
        return tablib.Dataset(*rows, headers=["tier", "points", "value"])
    raise ValueError(by)


def rollforward_dataset(period: RollForward) -> tablib.Dataset:
    """One row per line, programme then tiers (points and money)."""
    data = tablib.Dataset(headers=["scope", "line", "points", "value"])
    scopes = [("programme", period.lines)] + [
        (tier.name if tier else "no tier", lines) for tier, lines in period.by_tier
    ]
    for scope, lines in scopes:
        for code, line in lines.items():
            data.append([scope, code, line.points, _money(line.money)])
    return data


def dataset_bytes(data: tablib.Dataset, fmt: str) -> bytes:
    exported = FORMATS[fmt]().export_data(data)
    return exported.encode("utf-8") if isinstance(exported, str) else exported


def as_json(report: Liability) -> str:
    return json.dumps(
        {
            "summary": dict(summary_rows(report)),
            "by_expiry_month": [
                {"expiry_month": _month(m), "points": r.points, "value": _money(r.money)}
                for m, r in report.by_expiry_month
            ],
            "by_tier": [
                {"tier": t.name if t else "", "points": r.points, "value": _money(r.money)}
                for t, r in report.by_tier
            ],
        },
        indent=2,
    )


def member_header(months: list[date | None]) -> list[str]:
    return [
        "member_id",
        "card",
        "tier",
        "outstanding_points",
        "debt_points",
        "value",
        *[f"expiring_{_month(m)}" for m in months],
    ]


def member_table(*, as_of: datetime) -> Iterator[list]:
    """The header, then one list per member (the per-member export's rows)."""
    months = expiry_months(as_of=as_of)
    yield member_header(months)
    for row in member_rows(as_of=as_of):
        yield [
            row.member,
            row.card,
            row.tier,
            row.outstanding_points,
            row.debt_points,
            _money(row.value),
            *[row.by_month.get(m, 0) for m in months],
        ]


def csv_lines(rows: Iterable[list]) -> Iterator[str]:
    """Each row as one CSV line (for a StreamingHttpResponse or a file)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def xlsx_write(rows: Iterable[list], target) -> None:
    """Write rows to ``target`` (a path or a binary file) as XLSX, row by row."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("liability")
    for row in rows:
        sheet.append(row)
    workbook.save(target)


def deferred_dataset(periods) -> tablib.Dataset:
    data = tablib.Dataset(
        headers=[
            "month",
            "issued",
            "redeemed",
            "rate",
            "allocated",
            "recognised",
            "catch_up",
            "deferred",
        ]
    )
    for p in periods:
        data.append(
            [
                p.month.strftime("%Y-%m"),
                p.issued,
                p.redeemed,
                str(p.rate),
                str(p.allocated),
                str(p.recognised),
                str(p.catch_up),
                str(p.deferred),
            ]
        )
    return data
