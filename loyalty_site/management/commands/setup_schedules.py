from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from loyalty_site.schedules import SCHEDULES


class Command(BaseCommand):
    help = "Write the beat schedule declared in loyalty_site/schedules.py into the database."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Overwrite entries that an operator changed in the admin.",
        )

    @transaction.atomic
    def handle(self, *args, reset=False, **options):
        for entry in SCHEDULES:
            crontab, _created = CrontabSchedule.objects.get_or_create(
                minute=entry.minute,
                hour=entry.hour,
                day_of_week=entry.day_of_week,
                day_of_month=entry.day_of_month,
                month_of_year=entry.month_of_year,
                timezone="UTC",
            )
            task = PeriodicTask.objects.filter(name=entry.name).first()
            if task is None:
                PeriodicTask.objects.create(
                    name=entry.name,
                    task=entry.task,
                    crontab=crontab,
                    description=entry.description,
                )
                self.stdout.write(f"created {entry.name}")
            elif reset:
                task.task = entry.task
                task.crontab = crontab
                task.interval = None
                task.enabled = True
                task.description = entry.description
                task.save()
                self.stdout.write(f"reset {entry.name}")
            else:
                self.stdout.write(f"kept {entry.name}")
