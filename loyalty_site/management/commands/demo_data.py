from django.core.management.base import BaseCommand

from loyalty_site.demo import DEMO_PASSWORD, demo_load


class Command(BaseCommand):
    help = "Load the demo data and staff logins (once; running it again changes nothing)."

    def handle(self, *args, **options):
        logins = demo_load(stdout=self.stdout)
        self.stdout.write(f"Demo logins (password: {DEMO_PASSWORD}):")
        for username, role in logins:
            self.stdout.write(f"  {username:<10} {role}")
