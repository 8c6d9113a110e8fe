from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ledger import selectors
from ledger.models import Account


class Command(BaseCommand):
    help = (
        "Compare every account's balance with the sum of its entries and of its lots (and held "
        "and pending points with open holds and pending records). Exits non-zero on a mismatch."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=2000)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, chunk_size=2000, no_progress=False, **options):
        total = Account.objects.count()
        checked = mismatches = 0
        with tqdm(total=total, unit="account", disable=no_progress, file=self.stderr._out) as bar:
            last = 0
            while True:
                ids = list(
                    Account.objects.filter(pk__gt=last)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:chunk_size]
                )
                if not ids:
                    break
                for account in selectors.accounts_with_totals(ids):
                    problems = selectors.account_mismatches(account)
                    if problems:
                        mismatches += 1
                        bar.write(
                            f"account {account.pk} (member {account.member_id}): "
                            + "; ".join(problems),
                            file=self.stdout._out,
                        )
                checked += len(ids)
                bar.update(len(ids))
                last = ids[-1]
        self.stdout.write(f"checked {checked} accounts, {mismatches} mismatches")
        if mismatches:
            raise CommandError(f"{mismatches} accounts do not reconcile")
