from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ledger import selectors
from ledger.finance import reconciliation
from ledger.models import ReconciliationRun


class Command(BaseCommand):
    help = (
        "Compare every account's balance with the sum of its entries and of its lots (and held "
        "and pending points with open holds and pending records). Exits non-zero on a mismatch. "
        "The run is stored and shown on the finance page."
    )

    def add_arguments(self, parser):
        parser.add_argument("--chunk-size", type=int, default=2000)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, chunk_size=2000, no_progress=False, **options):
        ids = selectors.account_ids()
        run = reconciliation.reconciliation_start(
            trigger=ReconciliationRun.Trigger.COMMAND, account_ids=ids, chunk_size=chunk_size
        )
        mismatches = 0
        bar = tqdm(total=len(ids), unit="account", disable=no_progress, file=self.stderr._out)
        with bar:
            for chunk in reconciliation.chunked(ids, chunk_size):
                for account, problems in reconciliation.reconciliation_chunk(
                    account_ids=chunk, run_id=run.pk
                ):
                    mismatches += 1
                    bar.write(
                        f"account {account.pk} (member {account.member_id}): "
                        + "; ".join(problems),
                        file=self.stdout._out,
                    )
                bar.update(len(chunk))
        self.stdout.write(f"checked {len(ids)} accounts, {mismatches} mismatches")
        if mismatches:
            raise CommandError(f"{mismatches} accounts do not reconcile")
