from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from campaigns.tiers import TIERS_CHUNK, tiers_recalculate


class Command(BaseCommand):
    help = "Recalculate every member's tier now (the nightly job); safe to run again."

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size",
            type=int,
            default=TIERS_CHUNK,
            help="Members per transaction (by id range).",
        )
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, chunk_size=TIERS_CHUNK, no_progress=False, **options):
        if chunk_size < 1:
            raise CommandError("--chunk-size must be at least 1")
        with tqdm(desc="tiers", unit="member", disable=no_progress, file=self.stderr._out) as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            counts = tiers_recalculate(progress=progress, chunk_size=chunk_size)
        self.stdout.write(
            "upgraded {upgraded}, downgraded {downgraded}, grace started {grace_started}, "
            "grace ended {grace_ended}".format(**counts)
        )
