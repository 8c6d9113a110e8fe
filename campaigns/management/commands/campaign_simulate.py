"""Replay a draft earning campaign over a past period, writing nothing.

manage.py campaign_simulate 12 --from 2025-01-01 --until 2025-12-31
"""

from datetime import date, datetime, time, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone
from tqdm import tqdm

from campaigns.models import Campaign
from campaigns.simulator import campaign_simulate, period_refusal
from ledger.models import Purchase


class Command(BaseCommand):
    help = "Simulate a draft earning campaign on the recorded purchases of a past period."

    def add_arguments(self, parser):
        parser.add_argument("campaign", type=int, help="campaign id")
        parser.add_argument("--from", dest="first", type=date.fromisoformat, required=True)
        parser.add_argument(
            "--until", dest="last", type=date.fromisoformat, required=True, help="inclusive"
        )
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, campaign, first, last, no_progress, **options):
        found = Campaign.objects.select_related("segment").filter(pk=campaign).first()
        if found is None:
            raise CommandError(f"no campaign {campaign}")
        if found.kind != Campaign.Kind.EARNING:
            raise CommandError("only an earning campaign can be simulated")
        if found.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
            raise CommandError("only a campaign that has not started can be simulated")
        refusal = period_refusal(first=first, last=last, today=timezone.localdate())
        if refusal:
            raise CommandError(refusal)
        tz = timezone.get_current_timezone()
        total = Purchase.objects.filter(
            occurred_at__gte=datetime.combine(first, time.min, tzinfo=tz),
            occurred_at__lt=datetime.combine(last + timedelta(days=1), time.min, tzinfo=tz),
        ).count()
        with (
            tqdm(total=total, unit="purchase", disable=no_progress, file=self.stderr._out) as bar,
            transaction.atomic(),  # one snapshot; server-side cursors need a transaction
        ):
            report = campaign_simulate(campaign=found, first=first, last=last, progress=bar.update)
        self.stdout.write(f"audience now: {report.audience} (control group {report.control})")
        self.stdout.write(f"purchases replayed: {report.purchases}")
        self.stdout.write(f"purchases by treated members: {report.purchases_treated}")
        self.stdout.write(f"points from the campaign's rules: {report.points}")
        self.stdout.write(f"extra points in all: {report.extra_points}")
        self.stdout.write(f"cost: {report.cost} {report.currency}")
        self.stdout.write(f"members reached: {report.members_reached}")
        if report.budget_points is not None:
            ran_out = report.budget_exhausted_on or "not within the period"
            self.stdout.write(f"budget: {report.budget_points} points, runs out: {ran_out}")
        self.stdout.write("liability by tier (tier, points, value):")
        for row in report.liability_by_tier:
            self.stdout.write(f"  {row.tier or '-'}: {row.points} {row.value}")
        self.stdout.write(f"seconds: {report.seconds:.1f}")
