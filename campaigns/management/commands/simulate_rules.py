"""Replay a past period's purchases through earning rules, writing nothing.

manage.py simulate_rules --start 2025-01-01 --end 2026-01-01 [--rule 3 --rule 7]
"""

from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from campaigns.models import EarningRule
from campaigns.simulator import period_refusal, simulate


class Command(BaseCommand):
    help = "Simulate earning rules on the recorded purchases of a past period."

    def add_arguments(self, parser):
        parser.add_argument("--start", type=date.fromisoformat, required=True)
        parser.add_argument(
            "--end", type=date.fromisoformat, required=True, help="exclusive (YYYY-MM-DD)"
        )
        parser.add_argument(
            "--rule", type=int, action="append", default=[], help="rule id (default: active)"
        )
        parser.add_argument("--top", type=int, default=10)

    def handle(self, *args, start, end, rule, top, **options):
        if end <= start:
            raise CommandError("--end must be after --start")
        refusal = period_refusal(
            first=start, last=end - timedelta(days=1), today=timezone.localdate()
        )
        if refusal:
            raise CommandError(refusal)
        tz = timezone.get_current_timezone()
        rules = EarningRule.objects.prefetch_related("tiers", "segments")
        rules = list(rules.filter(pk__in=rule) if rule else rules.filter(active=True))
        if rule and len(rules) != len(set(rule)):
            raise CommandError("unknown rule id")
        with transaction.atomic():  # one snapshot; server-side cursors need a transaction
            report = simulate(
                start=datetime.combine(start, time.min, tzinfo=tz),
                end=datetime.combine(end, time.min, tzinfo=tz),
                rules=rules,
                top=top,
            )
        self.stdout.write(f"purchases replayed: {report.purchases}")
        self.stdout.write(f"points: {report.points}")
        self.stdout.write(f"members reached: {report.members_reached}")
        self.stdout.write(f"cost: {report.cost}")
        for name, points in sorted(report.points_by_rule.items()):
            self.stdout.write(f"  {name}: {points}")
        self.stdout.write("top members (id, points):")
        for member_id, points in report.top_members:
            self.stdout.write(f"  {member_id}: {points}")
        self.stdout.write(f"seconds: {report.seconds:.1f}")
