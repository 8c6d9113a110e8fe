from django.core.management.base import BaseCommand, CommandError

from loyalty_site.demo import DEMO_PASSWORD, demo_load


class Command(BaseCommand):
    help = "Load the demo data and staff logins (once; running it again changes nothing)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--members",
            type=int,
            default=600,
            help="How many demo members to enrol (the rest of the data scales with them).",
        )

    def handle(self, *args, members, **options):
        if members < 1:
            raise CommandError("--members must be at least 1")
        logins = demo_load(stdout=self.stdout, members=members)
        self.stdout.write(f"Demo logins (password: {DEMO_PASSWORD}):")
        for username, role in logins:
            self.stdout.write(f"  {username:<10} {role}")
