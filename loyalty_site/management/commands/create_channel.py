"""`manage.py create_channel NAME [--kind pos] [--scopes a,b] [--stores s1,s2]`.

Prints the new key alone on the last line (so scripts can take `tail -n 1`); the key is stored
hashed and cannot be shown again.
"""

from django.core.management.base import BaseCommand, CommandError

from loyalty_site.channels import channel_create, channel_key_replace
from loyalty_site.errors import DomainError
from loyalty_site.models import SCOPES, Channel


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class Command(BaseCommand):
    help = "Create an API channel with a key (or a new key with --new-key); prints the key last."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--kind", choices=Channel.Kind.values, default=Channel.Kind.POS)
        parser.add_argument(
            "--scopes",
            default=",".join(SCOPES),
            help=f"comma-separated, of: {', '.join(SCOPES)} (default: all)",
        )
        parser.add_argument("--stores", default="", help="comma-separated store codes")
        parser.add_argument("--rate", default="", help='e.g. "600/min" (default LOYALTY_API_RATE)')
        parser.add_argument(
            "--new-key",
            action="store_true",
            help="the channel exists: revoke its keys and issue a new one",
        )

    def handle(self, *args, name, kind, scopes, stores, rate, new_key, **options):
        channel = Channel.objects.filter(name=name).first()
        try:
            if channel is not None and new_key:
                revoked, key = channel_key_replace(channel=channel)
                self.stdout.write(f"channel {name}: {revoked} old key(s) revoked")
            else:
                channel, key = channel_create(
                    name=name, kind=kind, scopes=_csv(scopes), stores=_csv(stores), rate=rate
                )
                self.stdout.write(f"channel {name} ({kind}) scopes: {', '.join(channel.scopes)}")
        except DomainError as error:
            if error.code == "channel_exists":
                raise CommandError(
                    f"channel {name!r} exists; use --new-key to replace its key"
                ) from None
            raise CommandError(str(error.detail)) from None
        self.stdout.write(key)
