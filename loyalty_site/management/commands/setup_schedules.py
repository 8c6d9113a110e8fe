from django.core.management.base import BaseCommand

from loyalty_site.schedules import schedules_sync


class Command(BaseCommand):
    help = "Write the beat schedule declared in loyalty_site/schedules.py into the database."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Overwrite entries that an operator changed in the admin.",
        )

    def handle(self, *args, reset=False, **options):
        for name, outcome in schedules_sync(reset=reset).items():
            self.stdout.write(f"{outcome} {name}")
