"""Tier recalculation: which tier each member's qualifying points earn them.

Qualifying points of a member for a tier are counted over that tier's rolling window (the last
``window_months`` months up to and including now, an entry exactly on the window's start
counts):

    the sum of the member's ``earn`` entries (points from purchases and engagement)
    plus the ``reverse`` entries that take earned points back (returns' clawbacks: negative
    reversals of an earn entry).

Redemptions, expiry, transfers and staff adjustments (imported opening balances included) do not
qualify: spending points must not cost a member their status, and a tier is earned by buying
and engaging, not granted by a correction. Pending points count once they post as an earn.

A member's target tier is the highest-ranked tier whose threshold their points reach (a tier
with threshold 0 is where everyone starts). Upgrades apply at once. A member below their current
tier's threshold keeps it for that tier's ``downgrade_grace_days``, counted from the first
recalculation that saw them below (``Member.tier_below_since``); qualifying again within the
grace ends it. Every change writes a TierHistory row with its reason.

One member and a million share these rules: ``qualifying_points`` (one member, on earn and for
the progress bar) and the bulk run aggregate the same queryset (``_qualifying_entries``), and
both pick the target by walking the ladder from the top (``_ladder_down``).

The bulk run works in chunks of members (an id range, or a task's list of ids), each in its own
short transaction, so that no row lock is held for the whole run. A chunk is a handful of
set-based statements (no per-member Python loop): one GROUP BY computes the qualifying points
of the chunk's members into a temporary table, already joined to the ladder (target tier,
ranks, grace end, the points that decided); then one ``UPDATE ... FROM`` per kind of change
(upgrades, grace clock stopped, grace clock started, downgrades), one ``INSERT ... SELECT`` of
the history per kind of move, and the audit rows and events of the moved members. The
temporary table lives and dies inside the chunk's transaction (no session state: PgBouncer in
transaction mode is fine). The nightly job sends the chunks as tasks (``tier_candidates`` lists
the members whose tier may change), all as of the same moment. It is safe to run twice (the
second run finds nothing to change) and concurrently (PostgreSQL: a transaction-scoped advisory
lock serialises chunks; SQLite: write transactions are serialised already).
"""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, F, Max, Min, Q, QuerySet, Sum, Value, When
from django.utils import timezone

from ledger.models import Account, Entry
from members.models import Member, Tier, TierHistory
from members.periods import tier_change_dated
from members.selectors import tiers_cached
from members.services import member_tier_set, tier_changes_record

# pg_advisory_xact_lock key: an arbitrary constant, the same in every process.
RECALC_LOCK_KEY = 727_400_001
TEMP_TABLE = "tier_recalc_target"
# Members per chunk: one transaction each, so this bounds how long a chunk holds its row locks
# (and the audit rows and events it builds in memory).
TIERS_CHUNK = 5000
CHANGES_BATCH = 5000
COUNTS = ("upgraded", "downgraded", "grace_started", "grace_ended")


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` calendar months earlier (day clamped to the month's
    end: 31 March minus one month is 28/29 February)."""
    return moment - relativedelta(months=months)


def _qualifying_filter() -> Q:
    """Entries that count as qualifying points (see the module docstring)."""
    return Q(kind=Entry.Kind.EARN, amount__gt=0) | Q(
        kind=Entry.Kind.REVERSE, amount__lt=0, refers_to__kind=Entry.Kind.EARN
    )


def _ladder_down(tiers: list[Tier]) -> list[Tier]:
    """The ladder from the top: a member's target is the first tier whose threshold they reach
    (``_target`` for one member, the CASE of ``_targets_query`` for many)."""
    return sorted(tiers, key=lambda t: t.rank, reverse=True)


def _target(tiers: list[Tier], points_by_tier: dict[int, int]) -> Tier | None:
    for tier in _ladder_down(tiers):
        if points_by_tier.get(tier.pk, 0) >= tier.threshold:
            return tier
    return None


def _qualifying_entries(*, now: datetime, tiers: list[Tier]) -> tuple[QuerySet, dict]:
    """The entries that qualify for some tier at ``now`` and, per tier, the sum that counts
    them over its window (named ``q_<tier id>``): what one member's figures and the bulk
    run's GROUP BY aggregate."""
    cutoffs = {tier.pk: months_before(now, tier.window_months) for tier in tiers}
    sums = {
        f"q_{tier_id}": Sum(
            Case(
                When(created_at__gte=cutoff, then="amount"),
                default=Value(0),
                output_field=BigIntegerField(),
            )
        )
        for tier_id, cutoff in cutoffs.items()
    }
    entries = Entry.objects.filter(
        _qualifying_filter(), created_at__gte=min(cutoffs.values()), created_at__lte=now
    )
    return entries, sums


def qualifying_points(
    *, member: Member, now: datetime | None = None, tiers: list[Tier] | None = None
) -> dict[int, int]:
    """Qualifying points per tier id for one member (each over that tier's window)."""
    now = now or timezone.now()
    tiers = list(Tier.objects.all()) if tiers is None else tiers
    if not tiers:
        return {}
    entries, sums = _qualifying_entries(now=now, tiers=tiers)
    row = entries.filter(account__member=member).aggregate(**sums)
    return {tier.pk: row.get(f"q_{tier.pk}") or 0 for tier in tiers}


def tier_progress(*, member: Member, now: datetime | None = None) -> dict:
    """The member's tier and the points they still need for the next one (API, pages).

    The ladder comes from the per-process copy (``tiers_cached``) and the member's tier from it
    by id: no query when the programme has no tiers, one (the qualifying points) when it has."""
    tiers = sorted(tiers_cached(), key=lambda tier: tier.rank)
    current = next((t for t in tiers if t.pk == member.tier_id), None)
    if current is None and member.tier_id is not None:
        # A tier newer than this process's copy of the ladder.
        tiers = list(Tier.objects.order_by("rank"))
        current = next((t for t in tiers if t.pk == member.tier_id), None)
    current_rank = current.rank if current else -1
    next_tier = next((t for t in tiers if t.rank > current_rank), None)
    points = qualifying_points(member=member, now=now, tiers=tiers) if next_tier else {}
    return {
        "tier": current.name if current else None,
        "next_tier": next_tier.name if next_tier else None,
        "points_to_next_tier": (
            max(next_tier.threshold - points.get(next_tier.pk, 0), 0) if next_tier else None
        ),
        # For a progress bar (the member page): the next tier's threshold and the qualifying
        # points counted over its window.
        "next_tier_threshold": next_tier.threshold if next_tier else None,
        "qualifying_points": points.get(next_tier.pk, 0) if next_tier else None,
    }


def tier_upgrade_on_earn(
    *, member: Member, now: datetime | None = None, channel: str = ""
) -> TierHistory | None:
    """Upgrade at once when the member's points now reach a higher tier (never downgrades).

    Called by purchase_record and event_record inside their transaction, after the points are
    posted; `channel` is the one that sent the purchase or event (for the tier.changed event).
    """
    now = now or timezone.now()
    tiers = tiers_cached()
    if not tiers:
        return None
    points = qualifying_points(member=member, now=now, tiers=tiers)
    target = _target(tiers, points)
    if target is None:
        return None
    current = Member.objects.filter(pk=member.pk).values_list("tier__rank", flat=True).first()
    if current is not None and target.rank <= current:
        if target.rank == current and member.tier_below_since is not None:
            # Qualifies again for the tier it holds: the grace period ends.
            Member.objects.filter(pk=member.pk).update(tier_below_since=None)
            member.tier_below_since = None
        return None
    return member_tier_set(
        member=member,
        tier=target,
        reason=TierHistory.Reason.EARN,
        qualifying_points=points.get(target.pk),
        at=now,
        channel=channel,
    )


def _sql_value(moment: datetime):
    return connection.ops.adapt_datetimefield_value(moment)


class _Chunk:
    """The members of one chunk: an id range (a whole run) or a list of ids (a task's)."""

    def __init__(self, *, low: int | None = None, high: int | None = None, ids=None):
        self.low, self.high, self.ids = low, high, ids

    @property
    def size(self) -> int:
        return len(self.ids) if self.ids is not None else self.high - self.low + 1

    def entries(self, entries: QuerySet) -> QuerySet:
        if self.ids is not None:
            return entries.filter(account__member__in=self.ids)
        if self.low is not None:
            # Bounds on the entries' own account column too, so that the chunk's entries are
            # one range of the entry_account_period index (accounts are opened in the order
            # their members enrol; if not, the range is wider, the join still exact).
            # (Read as a list: MIN()/MAX() would walk the primary key from one end.)
            accounts = list(
                Account.objects.filter(member__gte=self.low, member__lte=self.high).values_list(
                    "pk", flat=True
                )
            )
            # No account: an empty range (the query must still compile, for its members).
            low, high = (min(accounts), max(accounts)) if accounts else (1, 0)
            return entries.filter(
                account__gte=low,
                account__lte=high,
                account__member__gte=self.low,
                account__member__lte=self.high,
            )
        return entries

    def members(self, column: str) -> tuple[str, list]:
        if self.ids is not None:
            if not self.ids:
                return " AND FALSE", []
            return f" AND {column} IN ({', '.join(['%s'] * len(self.ids))})", list(self.ids)
        if self.low is not None:
            return f" AND {column} BETWEEN %s AND %s", [self.low, self.high]
        return "", []


def _targets_query(*, tiers: list[Tier], now: datetime, chunk: _Chunk) -> tuple[str, list]:
    """The SELECT, with its parameters, of every member of ``chunk`` whose tier may change or
    whose grace clock runs: current and target tier and their ranks, the points that decided
    (in the target's window, or the current tier's on a downgrade to no tier), and when the
    grace period of the tier held ends if it started now.

    One GROUP BY over the chunk's qualifying entries (``_qualifying_entries``, the queryset of
    one member's figures), joined to the ladder by CASE expressions built from it.
    """
    member_t, tier_t = Member._meta.db_table, Tier._meta.db_table
    entries, sums = _qualifying_entries(now=now, tiers=tiers)
    grouped = (
        chunk.entries(entries)
        .order_by()
        .values(q_member_id=F("account__member_id"))
        .annotate(**sums)
    )
    grouped_sql, grouped_params = grouped.query.sql_with_params()
    # Parameters in the order their placeholders appear in the statement below.
    target_cases, target_params = [], []
    for tier in _ladder_down(tiers):
        target_cases.append(f"WHEN COALESCE(q.q_{tier.pk}, 0) >= %s THEN {tier.pk}")
        target_params.append(tier.threshold)
    grace_cases, grace_params = [], []
    for tier in tiers:
        grace_cases.append(f"WHEN {tier.pk} THEN %s")
        grace_params.append(_sql_value(now - timedelta(days=tier.downgrade_grace_days)))
    points_cases = " ".join(f"WHEN {tier.pk} THEN x.q_{tier.pk}" for tier in tiers)
    members_of, members_params = chunk.members("m.id")
    sql = f"""
        SELECT x.member_id, x.current_tier_id, x.target_tier_id, x.below_since,
               COALESCE(ct.rank, -1) AS current_rank, COALESCE(tt.rank, -1) AS target_rank,
               x.grace_end,
               CASE COALESCE(x.target_tier_id, x.current_tier_id) {points_cases} ELSE 0 END
                   AS points
        FROM (
            SELECT m.id AS member_id,
                   m.tier_id AS current_tier_id,
                   m.tier_below_since AS below_since,
                   CASE {" ".join(target_cases)} ELSE NULL END AS target_tier_id,
                   CASE m.tier_id {" ".join(grace_cases)} ELSE NULL END AS grace_end,
                   {", ".join(f"COALESCE(q.q_{tier.pk}, 0) AS q_{tier.pk}" for tier in tiers)}
            FROM {member_t} m
            LEFT JOIN ({grouped_sql}) q ON q.q_member_id = m.id
            WHERE m.status <> %s{members_of}
        ) x
        LEFT JOIN {tier_t} ct ON ct.id = x.current_tier_id
        LEFT JOIN {tier_t} tt ON tt.id = x.target_tier_id
        WHERE COALESCE(x.current_tier_id, 0) <> COALESCE(x.target_tier_id, 0)
           OR x.below_since IS NOT NULL
    """
    params = [
        *target_params,
        *grace_params,
        *grouped_params,
        Member.Status.ERASED,
        *members_params,
    ]
    return sql, params


def tier_candidates(*, now: datetime) -> list[int]:
    """The members whose tier may change at ``now`` or whose grace clock runs, in id order:
    what the nightly job splits in chunks (a read; each chunk computes its members again under
    their row locks). A member moved by a chunk is no candidate any more."""
    tiers = list(Tier.objects.all())
    if not tiers:
        return []
    sql, params = _targets_query(tiers=tiers, now=now, chunk=_Chunk())
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.member_id FROM ({sql}) t ORDER BY t.member_id", params)
        return [row[0] for row in cursor.fetchall()]


def _move(
    cursor, *, where: str, params: list, reason: str, now: datetime
) -> tuple[list[TierHistory], dict]:
    """Move the members of TEMP_TABLE matching ``where`` to their target tier and write their
    history; returns the history rows written, one per member moved, and the moved members'
    public ids (for the events).

    One ``UPDATE ... FROM`` joined on the member id. It re-checks each member's tier under its
    row lock, so a member whose tier changed since the temporary table was filled (an upgrade
    on earn) is left alone; the history is written for exactly the members it returned.
    """
    member_t, history_t = Member._meta.db_table, TierHistory._meta.db_table
    stamp = _sql_value(now)
    cursor.execute(
        f"""
        UPDATE {member_t} AS m
        SET tier_id = t.target_tier_id, tier_since = %s, tier_below_since = NULL
        FROM {TEMP_TABLE} t
        WHERE t.member_id = m.id AND ({where})
          AND COALESCE(m.tier_id, 0) = COALESCE(t.current_tier_id, 0)
        RETURNING id, public_id  -- unqualified: SQLite refuses an alias in RETURNING
        """,
        [stamp, *params],
    )
    as_uuid = Member._meta.get_field("public_id").to_python  # SQLite returns hex text
    public_ids = {member_id: as_uuid(public_id) for member_id, public_id in cursor.fetchall()}
    moved = sorted(public_ids)
    histories = []
    # A database takes at most so many parameters in one statement.
    for start in range(0, len(moved), CHANGES_BATCH):
        batch = moved[start : start + CHANGES_BATCH]
        cursor.execute(
            f"""
            INSERT INTO {history_t}
                (member_id, from_tier_id, to_tier_id, reason, note, qualifying_points, at)
            SELECT t.member_id, t.current_tier_id, t.target_tier_id, %s, '', t.points, %s
            FROM {TEMP_TABLE} t
            WHERE t.member_id IN ({", ".join(["%s"] * len(batch))})
            RETURNING id, member_id, from_tier_id, to_tier_id, qualifying_points
            """,
            [reason, stamp, *batch],
        )
        for pk, member_id, from_id, to_id, points in cursor.fetchall():
            histories.append(
                TierHistory(
                    pk=pk,
                    member_id=member_id,
                    from_tier_id=from_id,
                    to_tier_id=to_id,
                    reason=reason,
                    qualifying_points=points,
                    at=now,
                )
            )
    return histories, public_ids


def _chunk_recalculate(*, tiers: list[Tier], now: datetime, chunk: _Chunk) -> dict:
    """One chunk in one transaction (see the module docstring)."""
    member_t = Member._meta.db_table
    stamp = _sql_value(now)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECALC_LOCK_KEY])
        sql, params = _targets_query(tiers=tiers, now=now, chunk=chunk)
        cursor.execute(f"DROP TABLE IF EXISTS {TEMP_TABLE}")
        # Dropped at commit on PostgreSQL: behind a pooler in transaction mode the server
        # connection goes to another process next, which must not find this table.
        on_commit = " ON COMMIT DROP" if connection.vendor == "postgresql" else ""
        cursor.execute(f"CREATE TEMPORARY TABLE {TEMP_TABLE}{on_commit} AS {sql}", params)
        if connection.vendor == "postgresql":
            # A temporary table has no statistics until analysed: without them the planner
            # guesses its size and may choose a plan that visits it once per member.
            cursor.execute(f"ANALYZE {TEMP_TABLE}")

        upgrades, public_ids = _move(
            cursor,
            where="t.target_rank > t.current_rank",
            params=[],
            reason=TierHistory.Reason.QUALIFIED,
            now=now,
        )
        # Back at or above the tier held: the grace clock stops.
        cursor.execute(
            f"""UPDATE {member_t} AS m SET tier_below_since = NULL
                FROM {TEMP_TABLE} t
                WHERE t.member_id = m.id AND t.target_rank >= t.current_rank
                  AND t.below_since IS NOT NULL AND m.tier_below_since IS NOT NULL"""
        )
        grace_ended = cursor.rowcount
        # Grace over (each tier held has its own grace period: ``grace_end``). A tier without
        # grace ends at once: ``below_since`` is then now.
        downgrades, downgraded_ids = _move(
            cursor,
            where="t.target_rank < t.current_rank AND COALESCE(t.below_since, %s) <= t.grace_end",
            params=[stamp],
            reason=TierHistory.Reason.DOWNGRADE,
            now=now,
        )
        # Newly below the tier held and still in it: the grace clock starts now.
        cursor.execute(
            f"""UPDATE {member_t} AS m SET tier_below_since = %s
                FROM {TEMP_TABLE} t
                WHERE t.member_id = m.id AND t.target_rank < t.current_rank
                  AND t.below_since IS NULL AND m.tier_below_since IS NULL
                  AND COALESCE(m.tier_id, 0) = COALESCE(t.current_tier_id, 0)""",
            [stamp],
        )
        grace_started = cursor.rowcount
        cursor.execute(f"DROP TABLE {TEMP_TABLE}")
        # The audit rows and tier.changed events of every member this chunk moved, as
        # member_tier_set writes them for one.
        tier_changes_record(
            histories=sorted([*upgrades, *downgrades], key=lambda h: h.pk),
            public_ids={**public_ids, **downgraded_ids},
        )
    return {
        "upgraded": len(upgrades),
        "downgraded": len(downgrades),
        "grace_started": grace_started,
        "grace_ended": grace_ended,
    }


def _chunks(member_ids: list[int] | None, size: int):
    """The chunks of a run: ranges of ``size`` member ids, or the given ids ``size`` at a
    time; yields (chunk, total members to go through)."""
    if member_ids is not None:
        ids = sorted(member_ids)
        for start in range(0, len(ids), size):
            yield _Chunk(ids=ids[start : start + size]), len(ids)
        return
    bounds = Member.objects.aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return
    total = bounds["high"] - bounds["low"] + 1
    for low in range(bounds["low"], bounds["high"] + 1, size):
        yield _Chunk(low=low, high=min(low + size - 1, bounds["high"])), total


def tiers_recalculate(
    *,
    now: datetime | None = None,
    progress=None,
    member_ids: list[int] | None = None,
    chunk_size: int = TIERS_CHUNK,
) -> dict:
    """Recalculate every member's tier; returns counts of what changed.

    Works through the members in chunks of ``chunk_size`` (by id range, or of ``member_ids``
    when given: the nightly job's tasks hand out such lists from ``tier_candidates``), each
    chunk its own transaction, all as of the same ``now``. A chunk run twice with that ``now``
    moves nobody twice and writes the audit rows and events only of the history rows it wrote
    itself. ``progress`` (optional) is called after each chunk with the members gone through
    so far and the total, for a progress bar.
    """
    # A run dated in a month finance has closed is refused or run now (members.periods): its
    # tier changes would move that month's liability by tier.
    now, _moved = tier_change_dated(now or timezone.now())
    counts = dict.fromkeys(COUNTS, 0)
    tiers = list(Tier.objects.all())
    if not tiers:
        return counts
    done = 0
    for chunk, total in _chunks(member_ids, chunk_size):
        for name, value in _chunk_recalculate(tiers=tiers, now=now, chunk=chunk).items():
            counts[name] += value
        done += chunk.size
        if progress is not None:
            progress(done, total)
    return counts
