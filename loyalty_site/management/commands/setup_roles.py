from django.core.management.base import BaseCommand, CommandError

from loyalty_site.roles import UnknownPermission, roles_sync


class Command(BaseCommand):
    help = "Create the staff groups (Marketing, Customer service, Finance, Administrator)."

    def handle(self, *args, **options):
        try:
            counts = roles_sync()
        except UnknownPermission as exc:
            raise CommandError(str(exc)) from None
        for role, count in counts.items():
            self.stdout.write(f"{role}: {count} permissions")
