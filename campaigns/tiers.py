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

The nightly job runs in chunks of members (``tier_candidates`` lists the members whose tier
may change, ``tiers_recalculate(member_ids=...)`` does one chunk, all chunks as of the same
moment). Each run is a handful of set-based statements (no per-member Python loop): one
aggregates the qualifying points of every member into a temporary table, the others update the
members and insert the history from it. It is safe to run twice (the second run finds nothing
to change) and concurrently (PostgreSQL: a transaction-scoped advisory lock serialises runs;
SQLite: write transactions are serialised already).
"""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.db import connection, transaction
from django.db.models import Case, IntegerField, Q, Sum, Value, When
from django.utils import timezone

from ledger.models import Account, Entry
from members.models import Member, Tier, TierHistory
from members.selectors import tiers_cached
from members.services import member_tier_set, tier_changes_record

# pg_advisory_xact_lock key: an arbitrary constant, the same in every process.
RECALC_LOCK_KEY = 727_400_001
TEMP_TABLE = "tier_recalc_target"
CHANGES_CHUNK = 5000


def months_before(moment: datetime, months: int) -> datetime:
    """The same wall-clock time ``months`` calendar months earlier (day clamped to the month's
    end: 31 March minus one month is 28/29 February)."""
    return moment - relativedelta(months=months)


def _qualifying_filter() -> Q:
    """Entries that count as qualifying points (see the module docstring)."""
    return Q(kind=Entry.Kind.EARN, amount__gt=0) | Q(
        kind=Entry.Kind.REVERSE, amount__lt=0, refers_to__kind=Entry.Kind.EARN
    )


def _target(tiers: list[Tier], points_by_tier: dict[int, int]) -> Tier | None:
    for tier in sorted(tiers, key=lambda t: t.rank, reverse=True):
        if points_by_tier.get(tier.pk, 0) >= tier.threshold:
            return tier
    return None


def qualifying_points(
    *, member: Member, now: datetime | None = None, tiers: list[Tier] | None = None
) -> dict[int, int]:
    """Qualifying points per tier id for one member (each over that tier's window)."""
    now = now or timezone.now()
    tiers = list(Tier.objects.all()) if tiers is None else tiers
    if not tiers:
        return {}
    cutoffs = {tier.pk: months_before(now, tier.window_months) for tier in tiers}
    sums = {
        f"t{tier_id}": Sum(
            Case(
                When(created_at__gte=cutoff, then="amount"),
                default=Value(0),
                output_field=IntegerField(),
            )
        )
        for tier_id, cutoff in cutoffs.items()
    }
    row = (
        Entry.objects.filter(
            _qualifying_filter(),
            account__member=member,
            created_at__gte=min(cutoffs.values()),
            created_at__lte=now,
        ).aggregate(**sums)
        if sums
        else {}
    )
    return {tier_id: row.get(f"t{tier_id}") or 0 for tier_id in cutoffs}


def tier_progress(*, member: Member, now: datetime | None = None) -> dict:
    """The member's tier and the points they still need for the next one (API, pages)."""
    tiers = list(Tier.objects.order_by("rank"))
    points = qualifying_points(member=member, now=now, tiers=tiers)
    current_rank = member.tier.rank if member.tier_id else -1
    next_tier = next((t for t in tiers if t.rank > current_rank), None)
    return {
        "tier": member.tier.name if member.tier_id else None,
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


def _members_in(column: str, member_ids: list[int] | None) -> tuple[str, list]:
    """An SQL condition limiting ``column`` to a chunk's members (none: every member)."""
    if member_ids is None:
        return "", []
    if not member_ids:
        return " AND FALSE", []
    return f" AND {column} IN ({', '.join(['%s'] * len(member_ids))})", list(member_ids)


def _targets_query(
    *, tiers: list[Tier], now: datetime, member_ids: list[int] | None = None
) -> tuple[str, list]:
    """The SELECT of (member, current tier, target tier, ranks, qualifying points per tier) for
    every member (of ``member_ids``, when given) whose tier may change or whose grace clock
    runs, with its parameters."""
    member_t = Member._meta.db_table
    tier_t = Tier._meta.db_table
    entry_t = Entry._meta.db_table
    account_t = Account._meta.db_table
    cutoffs = {tier.pk: months_before(now, tier.window_months) for tier in tiers}
    # Parameters in the order their placeholders appear in the statement below.
    target_cases, threshold_params = [], []
    for tier in sorted(tiers, key=lambda t: t.rank, reverse=True):
        target_cases.append(f"WHEN COALESCE(q.q_{tier.pk}, 0) >= %s THEN {tier.pk}")
        threshold_params.append(tier.threshold)
    sums, cutoff_params = [], []
    for tier in tiers:
        sums.append(f"SUM(CASE WHEN e.created_at >= %s THEN e.amount ELSE 0 END) AS q_{tier.pk}")
        cutoff_params.append(_sql_value(cutoffs[tier.pk]))
    entries_of, entries_params = _members_in("a.member_id", member_ids)
    members_of, members_params = _members_in("m.id", member_ids)
    params = [
        *threshold_params,
        *cutoff_params,
        _sql_value(min(cutoffs.values())),
        _sql_value(now),
        *entries_params,
    ]
    params.append(Member.Status.ERASED)
    params.extend(members_params)
    sql = f"""
        SELECT x.*, COALESCE(ct.rank, -1) AS current_rank, COALESCE(tt.rank, -1) AS target_rank
        FROM (
            SELECT m.id AS member_id,
                   m.tier_id AS current_tier_id,
                   m.tier_below_since AS below_since,
                   CASE {" ".join(target_cases)} ELSE NULL END AS target_tier_id,
                   q.*
            FROM {member_t} m
            LEFT JOIN (
                SELECT a.member_id AS q_member_id, {", ".join(sums)}
                FROM {entry_t} e
                JOIN {account_t} a ON a.id = e.account_id
                LEFT JOIN {entry_t} r ON r.id = e.refers_to_id
                WHERE e.created_at >= %s AND e.created_at <= %s
                  AND ((e.kind = 'earn' AND e.amount > 0)
                       OR (e.kind = 'reverse' AND e.amount < 0 AND r.kind = 'earn'))
                  {entries_of}
                GROUP BY a.member_id
            ) q ON q.q_member_id = m.id
            WHERE m.status <> %s{members_of}
        ) x
        LEFT JOIN {tier_t} ct ON ct.id = x.current_tier_id
        LEFT JOIN {tier_t} tt ON tt.id = x.target_tier_id
        WHERE COALESCE(x.current_tier_id, 0) <> COALESCE(x.target_tier_id, 0)
           OR x.below_since IS NOT NULL
    """
    return sql, params


def _create_targets(
    cursor, *, tiers: list[Tier], now: datetime, member_ids: list[int] | None = None
) -> None:
    """Fill TEMP_TABLE with ``_targets_query``'s rows and the points that decided."""
    sql, params = _targets_query(tiers=tiers, now=now, member_ids=member_ids)
    points_cases = [f"WHEN {tier.pk} THEN COALESCE(q_{tier.pk}, 0)" for tier in tiers]
    cursor.execute(f"DROP TABLE IF EXISTS {TEMP_TABLE}")
    cursor.execute(f"CREATE TEMPORARY TABLE {TEMP_TABLE} AS {sql}", params)
    # The points that decided, in the target's window (or the current tier's on a downgrade
    # to no tier): written to the history.
    cursor.execute(f"ALTER TABLE {TEMP_TABLE} ADD COLUMN points BIGINT")
    if tiers:
        cursor.execute(
            f"""UPDATE {TEMP_TABLE} SET points = CASE COALESCE(target_tier_id, current_tier_id)
                {" ".join(points_cases)} ELSE 0 END"""
        )
    cursor.execute(f"CREATE INDEX {TEMP_TABLE}_member ON {TEMP_TABLE} (member_id)")


def tier_candidates(*, now: datetime) -> list[int]:
    """The members whose tier may change at ``now`` or whose grace clock runs, in id order:
    what the nightly job splits in chunks (a read; each chunk computes its members again under
    their row locks). A member moved by a chunk is no candidate any more."""
    tiers = list(Tier.objects.all())
    if not tiers:
        return []
    sql, params = _targets_query(tiers=tiers, now=now)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT t.member_id FROM ({sql}) t ORDER BY t.member_id", params)
        return [row[0] for row in cursor.fetchall()]


def _move(cursor, *, where: str, params: list, reason: str, now: datetime) -> tuple[int, list[int]]:
    """Move the members of TEMP_TABLE matching ``where`` to their target tier, with history;
    returns how many moved and the ids of the history rows written.

    The UPDATE re-checks each member's tier under its row lock, so a member whose tier changed
    since the temporary table was filled (an upgrade on earn) is left alone; the history is
    then written only for the rows that this UPDATE marked with this run's ``tier_since``.
    """
    member_t = Member._meta.db_table
    history_t = TierHistory._meta.db_table
    stamp = _sql_value(now)
    cursor.execute(
        f"""
        UPDATE {member_t}
        SET tier_id = (SELECT t.target_tier_id FROM {TEMP_TABLE} t
                       WHERE t.member_id = {member_t}.id),
            tier_since = %s,
            tier_below_since = NULL
        WHERE id IN (SELECT t.member_id FROM {TEMP_TABLE} t WHERE {where})
          AND COALESCE(tier_id, 0) = COALESCE(
                (SELECT t.current_tier_id FROM {TEMP_TABLE} t
                 WHERE t.member_id = {member_t}.id), 0)
        """,
        [stamp, *params],
    )
    moved = cursor.rowcount
    history_ids: list[int] = []
    if moved:
        cursor.execute(
            f"""
            INSERT INTO {history_t}
                (member_id, from_tier_id, to_tier_id, reason, note, qualifying_points, at)
            SELECT t.member_id, t.current_tier_id, t.target_tier_id, %s, '', t.points, %s
            FROM {TEMP_TABLE} t
            JOIN {member_t} m ON m.id = t.member_id
            WHERE ({where}) AND m.tier_since = %s
              AND COALESCE(m.tier_id, 0) = COALESCE(t.target_tier_id, 0)
            RETURNING id
            """,
            [reason, stamp, *params, stamp],
        )
        history_ids = [row[0] for row in cursor.fetchall()]
    return moved, history_ids


@transaction.atomic
def tiers_recalculate(
    *, now: datetime | None = None, progress=None, member_ids: list[int] | None = None
) -> dict:
    """Recalculate every member's tier; returns counts of what changed.

    ``member_ids`` limits the run to those members: the nightly job hands out chunks of them
    (``tier_candidates``), each its own short task, all with the same ``now``.
    A chunk run twice with that ``now`` moves nobody twice and writes the audit rows and events
    only of the history rows it wrote itself.
    ``progress`` (optional) is called with a step name after each statement, for a progress bar.
    """
    now = now or timezone.now()
    step = progress or (lambda _name: None)
    member_t = Member._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [RECALC_LOCK_KEY])
        tiers = list(Tier.objects.all())
        if not tiers:
            return {"upgraded": 0, "downgraded": 0, "grace_started": 0, "grace_ended": 0}
        _create_targets(cursor, tiers=tiers, now=now, member_ids=member_ids)
        step("qualifying points")

        upgraded, history_ids = _move(
            cursor,
            where="t.target_rank > t.current_rank",
            params=[],
            reason=TierHistory.Reason.QUALIFIED,
            now=now,
        )
        step("upgrades")

        # Back at or above the tier held: the grace clock stops.
        cursor.execute(
            f"""UPDATE {member_t} SET tier_below_since = NULL
                WHERE id IN (SELECT t.member_id FROM {TEMP_TABLE} t
                             WHERE t.target_rank >= t.current_rank
                               AND t.below_since IS NOT NULL)
                  AND tier_below_since IS NOT NULL"""
        )
        grace_ended = cursor.rowcount

        # Newly below the tier held: the grace clock starts now.
        cursor.execute(
            f"""UPDATE {member_t} SET tier_below_since = %s
                WHERE id IN (SELECT t.member_id FROM {TEMP_TABLE} t
                             WHERE t.target_rank < t.current_rank AND t.below_since IS NULL)
                  AND tier_below_since IS NULL""",
            [_sql_value(now)],
        )
        grace_started = cursor.rowcount
        step("grace periods")

        # Grace over: one statement per tier held (each tier has its own grace period).
        downgraded = 0
        for tier in tiers:
            grace_end = now - timedelta(days=tier.downgrade_grace_days)
            moved, written = _move(
                cursor,
                where=(
                    "t.target_rank < t.current_rank AND t.current_tier_id = %s "
                    "AND COALESCE(t.below_since, %s) <= %s"
                ),
                params=[tier.pk, _sql_value(now), _sql_value(grace_end)],
                reason=TierHistory.Reason.DOWNGRADE,
                now=now,
            )
            downgraded += moved
            history_ids += written
        step("downgrades")
        cursor.execute(f"DROP TABLE IF EXISTS {TEMP_TABLE}")
    # The audit rows and tier.changed events of every member this run moved, as
    # member_tier_set writes them for one, in chunks so that memory stays flat. By the ids this
    # run inserted, not by ``at=now``: the other chunks of the night share that ``now``, and so
    # does this chunk when it is delivered again.
    # (A database takes at most so many parameters in one statement: CHANGES_CHUNK at a time.)
    history_ids.sort()
    for start in range(0, len(history_ids), CHANGES_CHUNK):
        tier_changes_record(
            histories=list(
                TierHistory.objects.filter(
                    pk__in=history_ids[start : start + CHANGES_CHUNK]
                ).order_by("pk")
            )
        )
    step("audit and events")
    return {
        "upgraded": upgraded,
        "downgraded": downgraded,
        "grace_started": grace_started,
        "grace_ended": grace_ended,
    }
