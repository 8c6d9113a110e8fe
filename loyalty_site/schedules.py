"""The beat schedule, declared in code.

`manage.py setup_schedules` writes these into django-celery-beat's tables. An entry that exists
already is left as the operator set it (paused, moved) unless `--reset` is given. Times are UTC.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    name: str
    task: str
    minute: str = "0"
    hour: str = "*"
    day_of_week: str = "*"
    day_of_month: str = "*"
    month_of_year: str = "*"
    description: str = ""


SCHEDULES: list[Schedule] = []
