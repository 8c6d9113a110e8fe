from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ledger import selectors
from ledger.finance import reconciliation
from ledger.models import Account, ReconciliationRun


class Command(BaseCommand):
    help = (
        "Compare every account's balance with the sum of its entries and of its lots (and held "
        "and pending points with open holds and pending records). Exits non-zero on a mismatch. "
        "The run is stored and shown on the finance page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=5000)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, chunk_size=5000, no_progress=False, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        # The accounts that exist now; one opened during the run waits for the next one. Ids
        # are read a range at a time and mismatches printed as found, so memory stays flat
        # however many accounts there are.
        last_id = Account.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        total = Account.objects.filter(pk__lte=last_id).count()
        run = reconciliation.reconciliation_start(
            trigger=ReconciliationRun.Trigger.COMMAND, accounts=total, chunk_size=chunk_size
        )
        mismatches = checked = 0
        bar = tqdm(total=total, unit="account", disable=no_progress, file=self.stderr._out)
        with bar:
            for first, last in selectors.account_id_ranges(chunk_size=chunk_size, up_to=last_id):
                found, size = reconciliation.reconciliation_range(
                    first=first, last=last, run_id=run.pk
                )
                for account, problems in found:
                    mismatches += 1
                    bar.write(
                        f"account {account.pk} (member {account.member_id}): "
                        + "; ".join(problems),
                        file=self.stdout._out,
                    )
                checked += size
                bar.update(size)
        self.stdout.write(f"checked {checked} accounts, {mismatches} mismatches")
        if mismatches:
            raise CommandError(f"{mismatches} accounts do not reconcile")
