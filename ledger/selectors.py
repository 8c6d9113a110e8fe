"""Reads of the ledger shared by the member page, the API, campaigns and reports."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import (
    BigIntegerField,
    F,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from ledger.models import (
    Account,
    AdjustmentRequest,
    Entry,
    Hold,
    IdempotencyRecord,
    Lot,
    PendingEarn,
    Purchase,
    PurchaseLine,
)
from members.models import Member


def balance_summary(*, member: Member) -> dict:
    """balance (spendable + held), pending, held and available points; zeros without account."""
    row = Account.objects.filter(member=member).values("balance", "pending", "held").first() or {
        "balance": 0,
        "pending": 0,
        "held": 0,
    }
    row["available"] = row["balance"] - row["held"]
    return row


def entries_for(*, member: Member) -> QuerySet[Entry]:
    """The member's entries, newest first."""
    return (
        Entry.objects.filter(account__member=member)
        .select_related("actor", "purchase")
        .order_by("-created_at", "-id")
    )


def entries_search(
    *,
    member_ids: Iterable[int] | None = None,
    reference: str = "",
    kind: str = "",
    channel: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    before: tuple[datetime, int] | None = None,
    limit: int,
) -> list[Entry]:
    """Entries newest first (created_at, then id), at most `limit`, for the ledger page.

    Keyset paging: `before` is the (created_at, id) of the last entry of the page before, and
    this page holds the entries after it in that order. No COUNT: on 30 M entries it would read
    them all. A member search reads through entry_account_recent, a reference through
    entry_reference, the newest of everything through the created_at index (tests/ledger).
    `start` is inclusive, `end` exclusive.
    """
    entries = Entry.objects.all()
    if member_ids is not None:
        entries = entries.filter(account__member_id__in=list(member_ids))
    if reference:
        entries = entries.filter(reference=reference)
    if kind:
        entries = entries.filter(kind=kind)
    if channel:
        entries = entries.filter(channel=channel)
    if start is not None:
        entries = entries.filter(created_at__gte=start)
    if end is not None:
        entries = entries.filter(created_at__lt=end)
    if before is not None:
        at, pk = before
        # The first condition alone is an index range on created_at; the second breaks ties.
        entries = entries.filter(Q(created_at__lte=at) & (Q(created_at__lt=at) | Q(pk__lt=pk)))
    return list(
        entries.select_related("account__member", "actor", "purchase").order_by(
            "-created_at", "-id"
        )[:limit]
    )


def points_expiring_soon(
    *,
    days: int,
    member: Member | None = None,
    now: datetime | None = None,
    member_ids: Iterable[int] | None = None,
) -> QuerySet:
    """Points that expire within ``days`` days, per member.

    Rows of ``{"member_id", "points", "first_expiry"}``, soonest first; filtered to one member
    when ``member`` is given (an empty result means nothing expires soon), or to a job's chunk
    of ``member_ids``.
    """
    now = now or timezone.now()
    lots = Lot.objects.filter(
        remaining__gt=0, expires_at__gt=now, expires_at__lte=now + timedelta(days=days)
    )
    if member is not None:
        lots = lots.filter(account__member=member)
    if member_ids is not None:
        lots = lots.filter(account__member_id__in=list(member_ids))
    return (
        lots.values(member_id=F("account__member_id"))
        .annotate(points=Sum("remaining"), first_expiry=Min("expires_at"))
        .order_by("first_expiry", "member_id")
    )


def lots_expiring_soon(*, member: Member, days: int, now: datetime | None = None) -> QuerySet[Lot]:
    """The member's lots with points left that expire within ``days`` days, soonest first (the
    lot-by-lot view of `points_expiring_soon`; served by the open-lots FIFO index)."""
    now = now or timezone.now()
    return Lot.objects.filter(
        account__member=member,
        remaining__gt=0,
        expires_at__gt=now,
        expires_at__lte=now + timedelta(days=days),
    ).order_by("expires_at", "id")


def debit_dated_from(*, member: Member, points: int) -> datetime | None:
    """The earliest moment a debit of ``points`` taken now may be dated without the ledger
    moving it ("Dates" in ``ledger.services.posting``): the date of the newest lot it would take
    points from, oldest first. None when the open lots hold fewer points. For callers that
    backdate on purpose (the demo data) and want the entry at the date they chose."""
    held = 0
    lots = Lot.objects.filter(account__member=member, remaining__gt=0).order_by("earned_at", "id")
    for earned_at, remaining in lots.values_list("earned_at", "remaining"):
        held += remaining
        if held >= points:
            return earned_at
    return None


def pending_for(*, member: Member) -> QuerySet[PendingEarn]:
    """The member's points that are earned but not yet spendable, soonest first."""
    return PendingEarn.objects.filter(
        account__member=member, status=PendingEarn.Status.PENDING
    ).order_by("matures_at", "id")


def purchases_for(*, member: Member) -> QuerySet[Purchase]:
    return (
        Purchase.objects.filter(member=member)
        .prefetch_related("lines", "returns")
        .order_by("-occurred_at", "-id")
    )


def _sum(model, field: str, **filters) -> Coalesce:
    subquery = (
        model.objects.filter(account=OuterRef("pk"), **filters)
        .order_by()
        .values("account")
        .annotate(total=Sum(field))
        .values("total")
    )
    return Coalesce(Subquery(subquery), Value(0), output_field=BigIntegerField())


def accounts_with_totals(account_ids: Iterable[int] | None = None) -> QuerySet[Account]:
    """Accounts annotated with what their stored totals must equal."""
    accounts = Account.objects.all()
    if account_ids is not None:
        accounts = accounts.filter(pk__in=list(account_ids))
    return accounts.annotate(
        entries_total=_sum(Entry, "amount"),
        lots_total=_sum(Lot, "remaining"),
        holds_total=_sum(Hold, "points", status=Hold.Status.OPEN),
        pending_total=_sum(PendingEarn, "points", status=PendingEarn.Status.PENDING),
    ).order_by("pk")


def account_mismatches(account: Account) -> list[str]:
    """What is wrong with one annotated account (empty when it reconciles)."""
    problems = []
    if account.balance != account.entries_total:
        problems.append(f"balance {account.balance} != entries {account.entries_total}")
    if max(account.balance, 0) != account.lots_total:
        problems.append(f"balance {account.balance} != lots {account.lots_total}")
    if account.held != account.holds_total:
        problems.append(f"held {account.held} != open holds {account.holds_total}")
    if account.pending != account.pending_total:
        problems.append(f"pending {account.pending} != pending points {account.pending_total}")
    return problems


# The reconciliation's one statement per range of accounts: each total is one GROUP BY over
# the range (the entries' from entry_account_period alone, an index-only scan), joined to the
# accounts by id, and only the accounts that disagree come back. Correlated subqueries per
# account (accounts_with_totals) cost four index probes an account and brought every account
# into Python to compare; this brings back only the mismatches. Lots with nothing left add
# nothing, so only open lots are read (the lot_open_fifo index). CASE, not GREATEST: SQLite.
_MISMATCHED_SQL = """
SELECT a.id FROM {account} a
LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM {entry}
           WHERE account_id BETWEEN %s AND %s GROUP BY account_id) e ON e.account_id = a.id
LEFT JOIN (SELECT account_id, SUM(remaining) AS total FROM {lot}
           WHERE remaining > 0 AND account_id BETWEEN %s AND %s GROUP BY account_id) l
       ON l.account_id = a.id
LEFT JOIN (SELECT account_id, SUM(points) AS total FROM {hold}
           WHERE status = %s AND account_id BETWEEN %s AND %s GROUP BY account_id) h
       ON h.account_id = a.id
LEFT JOIN (SELECT account_id, SUM(points) AS total FROM {pending}
           WHERE status = %s AND account_id BETWEEN %s AND %s GROUP BY account_id) p
       ON p.account_id = a.id
WHERE a.id BETWEEN %s AND %s
  AND (a.balance <> COALESCE(e.total, 0)
       OR (CASE WHEN a.balance > 0 THEN a.balance ELSE 0 END) <> COALESCE(l.total, 0)
       OR a.held <> COALESCE(h.total, 0)
       OR a.pending <> COALESCE(p.total, 0))
ORDER BY a.id
"""


def account_ids_mismatched(*, first: int, last: int) -> list[int]:
    """The ids of the accounts from ``first`` to ``last`` (inclusive) whose stored balance, held
    or pending points disagree with their entries, lots, open holds or pending points."""
    sql = _MISMATCHED_SQL.format(
        account=Account._meta.db_table,
        entry=Entry._meta.db_table,
        lot=Lot._meta.db_table,
        hold=Hold._meta.db_table,
        pending=PendingEarn._meta.db_table,
    )
    span = [first, last]
    params = [
        *span,
        *span,
        Hold.Status.OPEN,
        *span,
        PendingEarn.Status.PENDING,
        *span,
        *span,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def account_id_ranges(*, chunk_size: int, up_to: int | None = None) -> Iterator[tuple[int, int]]:
    """The accounts (up to id ``up_to``) as ranges of ids of at most ``chunk_size`` accounts,
    in id order, read one range at a time: memory does not grow with the accounts."""
    accounts = Account.objects.order_by("pk")
    if up_to is not None:
        accounts = accounts.filter(pk__lte=up_to)
    last = 0
    while True:
        ids = list(accounts.filter(pk__gt=last).values_list("pk", flat=True)[:chunk_size])
        if not ids:
            return
        yield ids[0], ids[-1]
        last = ids[-1]


def mismatches_between(
    *, first: int, last: int, only: set[int] | None = None
) -> Iterator[tuple[Account, list[str]]]:
    """The accounts from id ``first`` to ``last`` that do not reconcile (of ``only``, when
    given), with their problems."""
    ids = account_ids_mismatched(first=first, last=last)
    if only is not None:
        ids = [pk for pk in ids if pk in only]
    if not ids:
        return
    # The few that disagree, read again with the per-account totals to say how.
    for account in accounts_with_totals(ids).select_related("member"):
        problems = account_mismatches(account)
        if problems:
            yield account, problems


def ledger_mismatches(
    *, chunk_size: int = 2000, account_ids: Sequence[int] | None = None
) -> Iterator[tuple[Account, list[str]]]:
    """Every account that does not reconcile, with its problems, checked a range of ids at a
    time; only those of ``account_ids`` when given (a chunk of the nightly reconciliation:
    consecutive ids, so their range holds few others, and those are left out)."""
    if account_ids is not None:
        if account_ids:
            only = set(account_ids)
            yield from mismatches_between(first=min(only), last=max(only), only=only)
        return
    for first, last in account_id_ranges(chunk_size=chunk_size):
        yield from mismatches_between(first=first, last=last)


def accounts_expiring(*, now: datetime) -> list[int]:
    """The accounts with points to expire at ``now``, in id order (what the nightly job splits)."""
    return list(
        Lot.objects.filter(remaining__gt=0, expires_at__lte=now)
        .values_list("account_id", flat=True)
        .distinct()
        .order_by("account_id")
    )


def account_ids() -> list[int]:
    """Every account, in id order (what the nightly reconciliation splits into chunks)."""
    return list(Account.objects.order_by("pk").values_list("pk", flat=True))


def pending_maturing(*, now: datetime) -> QuerySet[PendingEarn]:
    """Pending points whose date has come at ``now`` (what ``points_mature`` makes spendable)."""
    return PendingEarn.objects.filter(status=PendingEarn.Status.PENDING, matures_at__lte=now)


def holds_timed_out(*, now: datetime) -> QuerySet[Hold]:
    """Open holds past their time-out at ``now`` (what ``holds_expire`` releases)."""
    return Hold.objects.filter(status=Hold.Status.OPEN, expires_at__lte=now)


def idempotency_records_expired(*, now: datetime) -> QuerySet[IdempotencyRecord]:
    """Records older than LOYALTY_IDEMPOTENCY_TTL_HOURS at ``now``: a retry after that is a new
    request (what ``idempotency_purge`` deletes)."""
    cutoff = now - timedelta(hours=settings.LOYALTY_IDEMPOTENCY_TTL_HOURS)
    return IdempotencyRecord.objects.filter(created_at__lt=cutoff)


def due_ids(due: QuerySet) -> list[int]:
    """The ids of a "due" queryset above, in id order (what a nightly job splits)."""
    return list(due.order_by("pk").values_list("pk", flat=True))


# --- The approval queue (the /approvals/ page) -------------------------------------------------


def adjustment_requests_pending(*, requested_by=None) -> QuerySet[AdjustmentRequest]:
    """Staff adjustments waiting for a second person, oldest first, with the member's account
    (its balance and held points) and the requester in the same query; ``requested_by`` keeps
    only that staff user's own requests."""
    rows = AdjustmentRequest.objects.filter(status=AdjustmentRequest.Status.PENDING)
    if requested_by is not None:
        rows = rows.filter(requested_by=requested_by)
    return rows.select_related("account__member", "requested_by").order_by("requested_at", "pk")


def adjustment_requests_decided(*, requested_by=None) -> QuerySet[AdjustmentRequest]:
    """Approved and rejected requests, the latest decision first (``requested_by`` as above)."""
    rows = AdjustmentRequest.objects.exclude(status=AdjustmentRequest.Status.PENDING)
    if requested_by is not None:
        rows = rows.filter(requested_by=requested_by)
    return rows.select_related("account__member", "requested_by", "decided_by").order_by(
        "-decided_at", "-pk"
    )


def purchase_count(*, start: datetime, end: datetime) -> int:
    """Purchases that earn (not rejected) from `start` until before `end`: what a replay of
    the period reads (the simulator's progress bar counts towards it)."""
    return (
        Purchase.objects.filter(occurred_at__gte=start, occurred_at__lt=end)
        .exclude(status=Purchase.Status.REJECTED)
        .count()
    )


# -- values seen in purchases, for the earning-rule editor's pickers --------------------------

# How many of the newest rows the pickers look at: a DISTINCT over every purchase or line of a
# busy programme reads millions of rows (the admin's channel filter did, issue 16), the newest
# rows hold what is sold and where today.
SEEN_SAMPLE = 50_000


def purchase_channels_seen(*, limit: int = 100) -> list[str]:
    """The channels purchases were recorded through, at most `limit`, in order.

    A skip scan of the (channel, external_id) unique index: one index probe per channel, however
    many purchases there are, and exact (a channel with one old purchase is found too).
    """
    table = connection.ops.quote_name(Purchase._meta.db_table)
    sql = (
        f"WITH RECURSIVE seen(channel, n) AS ("
        f" SELECT MIN(channel), 1 FROM {table}"
        f" UNION ALL"
        f" SELECT (SELECT MIN(channel) FROM {table} WHERE channel > seen.channel), n + 1"
        f" FROM seen WHERE seen.channel IS NOT NULL AND n < %s"
        f") SELECT channel FROM seen WHERE channel IS NOT NULL"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


def purchase_values_recent(
    *, field: str, prefix: str = "", limit: int = 100, sample: int = SEEN_SAMPLE
) -> list[str]:
    """Distinct non-empty stores (`field="store"`) or line SKUs or categories (`"sku"`,
    `"category"`) among the newest `sample` purchases or lines, starting with `prefix` (any
    case), at most `limit`, in order. Bounded: the newest rows by primary key, never the table.
    """
    model = {"store": Purchase, "sku": PurchaseLine, "category": PurchaseLine}[field]
    newest = model.objects.order_by("-pk").values("pk")[:sample]
    rows = model.objects.filter(pk__in=newest).exclude(**{field: ""})
    if prefix:
        rows = rows.filter(**{f"{field}__istartswith": prefix})
    return list(rows.order_by(field).values_list(field, flat=True).distinct()[:limit])
