"""``manage.py liability_report``: the liability as of a date, for finance's scheduled jobs.

Its totals are the finance page's: both read ``ledger.finance.liability``.
"""

import sys

from django.core.management.base import BaseCommand, CommandError

from ledger.finance import exports, liability
from ledger.finance.moments import as_of_parse


class Command(BaseCommand):
    help = (
        "The points liability as of a date (end of that day) or a date and time (end of that "
        "second), in the programme's time zone; now by default. --by summary (default), "
        "expiry_month, tier or member; --format csv (default), xlsx or json; --output FILE "
        "(standard output by default; xlsx needs a file)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", default="", help="YYYY-MM-DD or 'YYYY-MM-DD HH:MM:SS'.")
        parser.add_argument("--by", choices=exports.BY, default="summary")
        parser.add_argument("--format", choices=("csv", "xlsx", "json"), default="csv")
        parser.add_argument("--output", default="", help="File to write (default: stdout).")

    def handle(self, *args, as_of="", by="summary", format="csv", output="", **options):
        try:
            moment = as_of_parse(as_of)
        except ValueError as error:
            raise CommandError(f"--as-of: {error}") from error
        if format == "xlsx" and not output:
            raise CommandError("--format xlsx needs --output FILE.")
        if by == "member":
            if format == "json":
                raise CommandError("--by member is written as csv or xlsx.")
            rows = exports.member_table(as_of=moment)
            if format == "xlsx":
                exports.xlsx_write(rows, output)
            else:
                self._write_text(exports.csv_lines(rows), output)
            return
        report = liability.liability_at(as_of=moment)
        if format == "json":
            self._write_text([exports.as_json(report) + "\n"], output)
            return
        data = exports.dataset_bytes(exports.dataset(report, by), format)
        if output:
            with open(output, "wb") as target:
                target.write(data)
        else:
            sys.stdout.flush()
            self.stdout.write(data.decode("utf-8"), ending="")

    def _write_text(self, chunks, output):
        if output:
            with open(output, "w", encoding="utf-8", newline="") as target:
                for chunk in chunks:
                    target.write(chunk)
        else:
            for chunk in chunks:
                self.stdout.write(chunk, ending="")
