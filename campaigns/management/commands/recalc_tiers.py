from django.core.management.base import BaseCommand
from tqdm import tqdm

from campaigns.tiers import tiers_recalculate

STEPS = ["qualifying points", "upgrades", "grace periods", "downgrades", "audit and events"]


class Command(BaseCommand):
    help = "Recalculate every member's tier now (the nightly job); safe to run again."

    def handle(self, *args, **options):
        with tqdm(total=len(STEPS), desc="tiers", unit="step") as bar:

            def progress(name: str) -> None:
                bar.set_postfix_str(name)
                bar.update(1)

            counts = tiers_recalculate(progress=progress)
        self.stdout.write(
            "upgraded {upgraded}, downgraded {downgraded}, grace started {grace_started}, "
            "grace ended {grace_ended}".format(**counts)
        )
