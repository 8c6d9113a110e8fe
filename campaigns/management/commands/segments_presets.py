from django.core.management.base import BaseCommand

from campaigns.services import segment_presets_ensure


class Command(BaseCommand):
    help = "Create the missing RFM preset segments (champions … lost); safe to run again."

    def handle(self, *args, **options):
        self.stdout.write(f"{segment_presets_ensure()} RFM preset segments created")
