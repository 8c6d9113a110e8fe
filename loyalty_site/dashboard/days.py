"""A day's dashboard figures, computed with set-based queries and upserted as one row.

Every query groups or aggregates over the day's entries, purchases, redemptions and answers
(or, for the 30-day active members, over thirty days of them): none loops over members, so a
day costs the same number of queries on a hundred members and on a million.

Outstanding points (the sum of positive balances) and members in debt are stocks, not flows: a
day's value is the previous day's plus the change of the accounts that moved that day. An
account's balance at a moment is the sum of its entries before it (invariant 1), so the change
is read from the day's accounts only: their balance at the end of the day and that balance less
the day's net movement. Without a previous row (the first day ever computed) the stock is
summed over every account once. A row therefore relies on the row before it: refresh days in
order (`days_refresh` does), and `days_refresh_due` starts again from the first day whose row
was computed before that day had ended.

Today's live stocks (`stocks_now=True`) read no account's history: a stored balance equals
the sum of its entries (invariant 1, checked by the nightly reconciliation), so the stock now is
yesterday's final row plus the change of the accounts that moved today (their stored balance,
and that balance less today's entries: both from today's entries only), or, without a final
row for yesterday, one aggregate over the stored balances. Either costs the same on a thousand
entries and on thirty million.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from campaigns import nps
from ledger.models import Account, Entry, Purchase
from loyalty_site.models import DashboardDay, DashboardRewardDay
from members.models import Member
from members.replica import on_replica
from rewards.models import Redemption

ACTIVE_WINDOW_DAYS = 30


def zone() -> ZoneInfo:
    return ZoneInfo(settings.TIME_ZONE)


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the programme's time zone (DST-safe)."""
    return datetime.combine(day, time.min, tzinfo=zone())


def local_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(zone()).date()


def _sum(queryset, field: str = "amount") -> int:
    return queryset.aggregate(total=Coalesce(Sum(field), 0))["total"]


def _active_members(start: datetime, end: datetime) -> int:
    """Members with a purchase or an earn entry in [start, end): one UNION of their accounts
    (one a member), counted.

    An earn entry names its account; a purchase names its member, whose account is looked up
    by the member's key, one index probe a purchase. Joined instead, the planner hashed every
    account of the programme for the day's few thousand rows (100,000 accounts read for 3,500
    rows, 30-70 ms at 100k members, and ten times that at a million): its costs take each probe
    for a disk read.
    """
    account = Account.objects.filter(member_id=OuterRef("member_id")).values("pk")
    buyers = (
        Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .exclude(status=Purchase.Status.REJECTED)
        .annotate(account=Subquery(account))
        .values("account")
    )
    earners = Entry.objects.filter(
        kind=Entry.Kind.EARN, created_at__gte=start, created_at__lt=end
    ).values("account_id")
    # UNION (not UNION ALL) removes the members found by both.
    return buyers.order_by().union(earners.order_by()).count()


def _balances(accounts, *, until: datetime, net_since: datetime | None = None) -> dict:
    """Over `accounts`: the positive balances' sum and the accounts below zero at `until`, and,
    with `net_since`, the same at `net_since` (the balance less what moved in between)."""
    upto = (
        Entry.objects.filter(account=OuterRef("pk"), created_at__lt=until)
        .order_by()
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    rows = accounts.annotate(
        end=Coalesce(Subquery(upto, output_field=IntegerField()), Value(0)),
    )
    aggregates = {
        "outstanding": Coalesce(Sum("end", filter=Q(end__gt=0)), 0),
        "debt": Count("pk", filter=Q(end__lt=0)),
    }
    if net_since is not None:
        moved = (
            Entry.objects.filter(
                account=OuterRef("pk"), created_at__gte=net_since, created_at__lt=until
            )
            .order_by()
            .values("account")
            .annotate(total=Sum("amount"))
            .values("total")
        )
        rows = rows.annotate(
            moved=Coalesce(Subquery(moved, output_field=IntegerField()), Value(0))
        ).annotate(before=F("end") - F("moved"))
        aggregates |= {
            "outstanding_before": Coalesce(Sum("before", filter=Q(before__gt=0)), 0),
            "debt_before": Count("pk", filter=Q(before__lt=0)),
        }
    return rows.order_by().aggregate(**aggregates)


def _stocks_now(start: datetime, previous: DashboardDay | None) -> dict:
    """Outstanding points and members in debt at this moment, from the stored balances.

    Only for the day that includes now, starting at `start`: an entry dated later than now
    (none is, but `at=` allows it) is in a balance already.
    """
    if previous is None or previous.computed_at is None or previous.computed_at < start:
        # No row for yesterday, or one computed before yesterday ended: not a base to build
        # on. One pass over the accounts (not their entries).
        now = Account.objects.order_by().aggregate(
            outstanding=Coalesce(Sum("balance", filter=Q(balance__gt=0)), 0),
            debt=Count("pk", filter=Q(balance__lt=0)),
        )
        return {"points_outstanding": now["outstanding"], "members_in_debt": now["debt"]}
    today = (
        Entry.objects.filter(account=OuterRef("pk"), created_at__gte=start)
        .order_by()
        .values("account")
        .annotate(total=Sum("amount"))
        .values("total")
    )
    moved = (
        Account.objects.filter(
            pk__in=Entry.objects.filter(created_at__gte=start).values("account_id")
        )
        .annotate(today=Coalesce(Subquery(today, output_field=IntegerField()), Value(0)))
        .annotate(before=F("balance") - F("today"))
        .order_by()
        .aggregate(
            outstanding=Coalesce(Sum("balance", filter=Q(balance__gt=0)), 0),
            outstanding_before=Coalesce(Sum("before", filter=Q(before__gt=0)), 0),
            debt=Count("pk", filter=Q(balance__lt=0)),
            debt_before=Count("pk", filter=Q(before__lt=0)),
        )
    )
    return {
        "points_outstanding": previous.points_outstanding
        + moved["outstanding"]
        - moved["outstanding_before"],
        "members_in_debt": previous.members_in_debt + moved["debt"] - moved["debt_before"],
    }


def _stocks(day: date, start: datetime, end: datetime, previous: DashboardDay | None) -> dict:
    if previous is None:
        everyone = _balances(Account.objects.all(), until=end)
        return {
            "points_outstanding": everyone["outstanding"],
            "members_in_debt": everyone["debt"],
        }
    moved = Account.objects.filter(
        pk__in=Entry.objects.filter(created_at__gte=start, created_at__lt=end).values("account_id")
    )
    change = _balances(moved, until=end, net_since=start)
    return {
        "points_outstanding": previous.points_outstanding
        + change["outstanding"]
        - change["outstanding_before"],
        "members_in_debt": previous.members_in_debt + change["debt"] - change["debt_before"],
    }


def day_compute(
    day: date, *, previous: DashboardDay | None, rolling: bool = True, stocks_now: bool = False
) -> dict:
    """The figures of `day` (a dict of DashboardDay fields) and its rewards' redemptions.

    `previous` is the stored row of the day before (None: sum the stocks over every account).
    `rolling=False` leaves out the 30-day active members (the costliest query), and
    `stocks_now=True` reads the stocks from the stored balances and `previous` only if it is
    final: both for the live figures of today, and only for the day that includes now.
    """
    start, end = day_start(day), day_start(day + timedelta(days=1))
    entries = Entry.objects.filter(created_at__gte=start, created_at__lt=end).order_by()
    flows = entries.aggregate(
        issued=Coalesce(Sum("amount", filter=Q(kind=Entry.Kind.EARN)), 0),
        redeemed=Coalesce(Sum("amount", filter=Q(kind=Entry.Kind.REDEEM)), 0),
        expired=Coalesce(Sum("amount", filter=Q(kind=Entry.Kind.EXPIRE)), 0),
        adjusted=Coalesce(Sum("amount", filter=Q(kind=Entry.Kind.ADJUST)), 0),
        reversed=Coalesce(Sum("amount", filter=Q(kind=Entry.Kind.REVERSE)), 0),
    )
    purchases = (
        Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .exclude(status=Purchase.Status.REJECTED)
        .order_by()
        .aggregate(
            count=Count("id"),
            revenue=Coalesce(
                Sum("amount", filter=Q(currency=settings.LOYALTY_CURRENCY)), Decimal("0")
            ),
        )
    )
    answers = (
        nps.answers(start=start, end=end)
        .order_by()
        .aggregate(
            responses=Count("id"),
            promoters=Count("id", filter=Q(score__gte=nps.PROMOTER_MIN)),
            detractors=Count("id", filter=Q(score__lte=nps.DETRACTOR_MAX)),
        )
    )
    confirmed = Redemption.objects.filter(confirmed_at__gte=start, confirmed_at__lt=end)
    rewards = list(
        confirmed.filter(reward__isnull=False)
        .order_by()
        .values("reward_id")
        .annotate(redemptions=Count("id"), points=Sum("points"))
    )
    figures = {
        "enrolments": Member.objects.filter(enrolled_at__gte=start, enrolled_at__lt=end).count(),
        "active_members": _active_members(start, end),
        "points_issued": flows["issued"],
        "points_redeemed": -flows["redeemed"],
        "points_expired": -flows["expired"],
        "points_adjusted": flows["adjusted"],
        "points_reversed": flows["reversed"],
        "redemptions": confirmed.count(),
        "purchases": purchases["count"],
        "revenue": purchases["revenue"],
        "currency": settings.LOYALTY_CURRENCY,
        "nps_responses": answers["responses"],
        "nps_promoters": answers["promoters"],
        "nps_detractors": answers["detractors"],
        **(_stocks_now(start, previous) if stocks_now else _stocks(day, start, end, previous)),
    }
    if rolling:
        window_start = day_start(day - timedelta(days=ACTIVE_WINDOW_DAYS - 1))
        figures["active_members_30d"] = _active_members(window_start, end)
    return {"figures": figures, "rewards": rewards}


def day_refresh(*, day: date, now: datetime | None = None) -> DashboardDay:
    """Compute `day` and upsert its row and its reward rows; running it again changes nothing
    (as long as the day before is unchanged)."""
    # The day before from the default database: days_refresh has just written it.
    previous = DashboardDay.objects.filter(day=day - timedelta(days=1)).first()
    # The day's facts (purchases, entries, members) from the read replica, if any: a compute
    # reads a day's rows of the biggest tables; the upsert below is short.
    with on_replica():
        computed = day_compute(day, previous=previous)
    return _day_store(day=day, computed=computed, now=now)


@transaction.atomic
def _day_store(*, day: date, computed: dict, now: datetime | None) -> DashboardDay:
    row, _created = DashboardDay.objects.update_or_create(
        day=day, defaults={**computed["figures"], "computed_at": now or timezone.now()}
    )
    DashboardRewardDay.objects.filter(day=day).delete()
    DashboardRewardDay.objects.bulk_create(
        DashboardRewardDay(
            day=day, reward_id=r["reward_id"], redemptions=r["redemptions"], points=r["points"]
        )
        for r in computed["rewards"]
    )
    return row


def days_refresh(
    *,
    since: date,
    until: date | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Refresh every day from `since` to `until` (default today), oldest first, each in its own
    transaction; returns how many days. `progress(done, total)` is told after each day."""
    until = until or local_today()
    total = max((until - since).days + 1, 0)
    for done in range(total):
        day_refresh(day=since + timedelta(days=done))
        if progress is not None:
            progress(done + 1, total)
    return total


def days_refresh_due(*, now: datetime | None = None, days: int = 2) -> int:
    """The scheduled refresh: at least the last `days` days (yesterday and today by default),
    and from further back if a row was computed before its day had ended (the worker was
    down), since every later row builds on it."""
    now = now or timezone.now()
    today = local_today(now)
    since = today - timedelta(days=days - 1)
    final = (
        DashboardDay.objects.filter(day__lt=since)
        .order_by("-day")
        .values_list("day", "computed_at")
        .first()
    )
    if final is not None:
        last_day, computed_at = final
        if computed_at < day_start(last_day + timedelta(days=1)):
            since = last_day
        elif last_day < since - timedelta(days=1):
            since = last_day + timedelta(days=1)
    return days_refresh(since=since, until=today)
