from collections import Counter
from itertools import islice

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from campaigns import services
from campaigns.models import Campaign
from loyalty_site.errors import DomainError


class Command(BaseCommand):
    help = (
        "Send (or resume sending) an active campaign's messages in this process: plans what is "
        "missing, then sends every message still due, in chunks. Safe to run twice or while the "
        "workers send: each message is claimed by one sender and delivered once."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign_id", type=int)
        parser.add_argument("--chunk-size", type=int, default=500)
        parser.add_argument("--no-progress", action="store_true", help="Hide the progress bar.")

    def handle(self, *args, campaign_id, chunk_size=500, no_progress=False, **options):
        campaign = Campaign.objects.filter(pk=campaign_id).first()
        if campaign is None:
            raise CommandError(f"no campaign {campaign_id}")
        try:
            planned = services.campaign_send_start(campaign=campaign, fan_out=False)
        except DomainError as error:
            raise CommandError(str(error.detail)) from error
        # A page of ids at a time: a million messages' ids are never all held.
        due = services.messages_due_ids(campaign=campaign)
        outcomes: Counter = Counter()
        with tqdm(unit="message", disable=no_progress, file=self.stderr._out) as bar:
            while chunk := list(islice(due, chunk_size)):
                outcomes.update(services.messages_send(message_ids=chunk).outcomes)
                bar.update(len(chunk))
        self.stdout.write(
            f"campaign {campaign.pk}: planned {planned} now; this run: "
            + ", ".join(f"{name} {outcomes[name]}" for name in sorted(outcomes))
        )
        progress = services.messages_progress(campaign=campaign)
        self.stdout.write(
            "in all: " + ", ".join(f"{name} {progress[name]}" for name in sorted(progress))
        )
