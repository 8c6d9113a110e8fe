from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from loyalty_site.dashboard.days import days_refresh, local_today


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date (YYYY-MM-DD): {value!r}") from exc


class Command(BaseCommand):
    help = (
        "Compute the dashboard's daily rows from --since (a date, YYYY-MM-DD) to --until "
        "(default today), oldest first. Safe to run again: each day's row is replaced."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, help="The first day, YYYY-MM-DD.")
        parser.add_argument("--until", help="The last day, YYYY-MM-DD (default: today).")
        parser.add_argument("--quiet", action="store_true", help="No progress bar.")

    def handle(self, *args, since, until=None, quiet=False, **options):
        first = _date(since)
        last = _date(until) if until else local_today()
        if first > last:
            raise CommandError("--since must not be after --until")
        total = (last - first).days + 1
        with tqdm(total=total, desc="dashboard", unit="day", disable=quiet) as bar:
            done = days_refresh(
                since=first, until=last, progress=lambda n, _total: bar.update(n - bar.n)
            )
        self.stdout.write(f"dashboard: {done} days refreshed ({first} to {last})")
