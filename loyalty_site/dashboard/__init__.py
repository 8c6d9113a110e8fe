"""The dashboard (the start page `/`): daily aggregates and the reads that compose them.

- `days`: one `DashboardDay` row (and its `DashboardRewardDay` rows) per day in the programme's
  time zone, computed with set-based queries and upserted; the Celery task
  `loyalty_site.dashboard_refresh` keeps yesterday and today current.
- `periods`: a chosen period and the previous one of the same length, read from those rows,
  with today's figures computed live.
- `panels`: what each role sees, as data (a panel and the permission that shows it).
"""
