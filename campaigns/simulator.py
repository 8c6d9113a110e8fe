"""Replay a past period's purchases through the earning engine, writing nothing.

Marketing asks "what would this rule have cost last year?". The simulator streams the period's
purchases (and, only when a rule filters on them, their lines) in time order with one query,
keeps the state that rules depend on in memory (each member's first purchase, per-member caps,
budgets), and runs the same `campaigns.engine.evaluate` the till uses. Members are judged with
their current tier, birth date and enrolment date, and with their segments as of now (a rule
limited to a segment counts the purchases of today's members of it over the whole period: one
query per segment, not a replay of who was in it on each day).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext

from campaigns import control, engine, segments, selectors
from campaigns.models import Campaign, EarningRule
from campaigns.services.budgets import budget_left, money_in_points
from ledger.models import Purchase, PurchaseLine
from members.models import Member

# Before this there are no purchases to replay, and a typo (0202 for 2020) reads a century.
EARLIEST = date(2000, 1, 1)
# A replay calls its `progress` with the purchases read since the last call, every this many.
PROGRESS_EVERY = 10_000
# Rows fetched from a cursor at a time. The read-ahead holds up to three batches a cursor (one
# being replayed, one handed over, one being fetched): 10,000 keeps the peak memory of one
# batch of 20,000 without read-ahead (142 against 144 MB for a year at 100k members).
FETCH_ROWS = 10_000
# Members replayed per chunk: what the simulator holds at once (their facts and purchases).
CHUNK_MEMBERS = 20_000
# The first window of the budget replay (days); each next one is four times as long.
BUDGET_WINDOW_DAYS = 7


def period_refusal(*, first: date, last: date, today: date) -> str:
    """Why the days first..last (both included) cannot be simulated; "" when they can.

    The admin form and the command ask this first: a reversed period would replay nothing and
    report 0 points as if that were the answer.
    """
    if last < first:
        return gettext("The end must be after the start.")
    if first < EARLIEST:
        return gettext("Simulate from %(date)s at the earliest.") % {"date": EARLIEST.isoformat()}
    if last > today + timedelta(days=1):
        return gettext("The period cannot end more than a day from now.")
    return ""


@dataclass
class SimulationReport:
    start: datetime
    end: datetime
    purchases: int = 0
    points: int = 0
    members_reached: int = 0
    cost: Decimal = Decimal(0)
    points_by_rule: dict[str, int] = field(default_factory=dict)
    top_members: list[tuple[int, int]] = field(default_factory=list)
    points_by_member: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0


def _member_facts_table() -> dict[int, tuple]:
    # Plain values, not model instances: this reads every member, and instances cost 10x more.
    fields = ["pk", "birth_date", "enrolled_at", "tier__name", "tier__earn_multiplier"]
    local_tz = timezone.get_current_timezone()
    table = {}
    for row in Member.objects.values_list(*fields).iterator(chunk_size=10_000):
        pk, birth, enrolled, tier, multiplier = row
        table[pk] = (
            tier or "",
            Decimal(multiplier or 1),
            birth,
            enrolled.astimezone(local_tz).date() if enrolled else None,
        )
    return table


def _segments_of_members(definitions: dict[int, dict]) -> dict[int, frozenset[int]]:
    """Member id → the ids of the given segments that hold them now (one query a segment)."""
    held: dict[int, set[int]] = defaultdict(set)
    for segment_id, definition in definitions.items():
        chosen = segments.members(definition).values_list("pk", flat=True)
        for member_id in chosen.iterator(chunk_size=10_000):
            held[member_id].add(segment_id)
    return {member_id: frozenset(ids) for member_id, ids in held.items()}


def _period_key(period: str, local: datetime):
    """Which cap period a local time falls in; the same periods as selectors.period_start."""
    if period == "day":
        return local.date()
    if period == "week":
        return local.date() - timedelta(days=local.weekday())
    if period == "month":
        return (local.year, local.month)
    if period == "year":
        return local.year
    return None


def _rows(sql: str, params: list):
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            yield from _read_ahead(cursor.cursor)
            return
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield from rows


def _read_ahead(server_cursor):
    """The rows of a psycopg server-side cursor, the next batch fetched by a thread while
    this one replays the last: the database computes a batch (a sort, the lines' index
    reads) while Python evaluates the rules, instead of each waiting for the other.

    The thread only fetches from the cursor it is given, on the connection this thread holds,
    inside its transaction: psycopg connections are thread-safe, their lock serialises the
    thread's fetches with this thread's statements (the other cursor of a replay, a job's
    progress). Closing the reader stops the thread before the cursor is closed.
    """
    batches: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                rows = server_cursor.fetchmany(FETCH_ROWS)
                batches.put(rows)
                if not rows:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, who raises it
            batches.put(exc)

    fetcher = threading.Thread(target=fetch, name="simulator-read-ahead", daemon=True)
    fetcher.start()
    try:
        while True:
            rows = batches.get()
            if isinstance(rows, BaseException):
                with connection.wrap_database_errors:
                    raise rows
            if not rows:
                return
            yield from rows
    finally:
        stop.set()
        while fetcher.is_alive():  # it may wait to hand over a batch nobody will read
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.01)
        fetcher.join()


def _local(occurred_at, tz) -> datetime:
    """A raw row's purchase time in the programme's zone (an epoch float, a datetime, or the
    text SQLite hands raw rows out as; naive means UTC)."""
    if type(occurred_at) is float:
        return datetime.fromtimestamp(occurred_at, tz)
    if isinstance(occurred_at, str):
        occurred_at = datetime.fromisoformat(occurred_at)
    if timezone.is_naive(occurred_at):
        occurred_at = timezone.make_aware(occurred_at, UTC)
    return occurred_at.astimezone(tz)


def _stream(start: datetime, end: datetime, with_lines: bool):
    with transaction.atomic():
        if connection.vendor == "postgresql":
            # The two ORDER BYs sort a year of purchases and their lines; with the default
            # work_mem they spill to disk. LOCAL: only for this read-only transaction.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL work_mem = '256MB'")
        yield from _stream_rows(start, end, with_lines)


def _stream_rows(
    start: datetime,
    end: datetime,
    with_lines: bool,
    *,
    member_range: str = "",
    extra: list | None = None,
    by_member: bool = False,
):
    """Yield (purchase row, [LineFacts]) in occurred_at order (member, then occurred_at order
    when `by_member`; `member_range` adds conditions on p.member_id with `extra` params).

    Two server-side cursors in the same order, merged here: a join would repeat every purchase
    column on each of its lines, and at a million purchases parsing those repeats dominates.
    """
    p = Purchase._meta.db_table
    line_table = PurchaseLine._meta.db_table
    where = "p.occurred_at >= %s AND p.occurred_at < %s AND p.status <> %s" + member_range
    order = "p.member_id, p.occurred_at, p.id" if by_member else "p.occurred_at, p.id"
    # Adapted as the ORM stores them: SQLite compares datetimes as text.
    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(start), adapt(end), Purchase.Status.REJECTED, *(extra or [])]
    # PostgreSQL hands out epoch seconds, which become datetimes far cheaper than parsed text.
    at = (
        "EXTRACT(EPOCH FROM p.occurred_at)::float8"
        if connection.vendor == "postgresql"
        else "p.occurred_at"
    )
    purchases = _rows(
        f"SELECT p.id, p.member_id, p.amount, {at}, p.channel, p.store, p.currency"
        f" FROM {p} p WHERE {where} ORDER BY {order}",
        params,
    )
    if not with_lines:
        for row in purchases:
            yield row, ()
        return
    columns = "l.purchase_id, l.sku, l.category, l.quantity, l.amount"
    if connection.vendor == "postgresql":
        # Each purchase's lines by its index, in the purchases' own order: the planner's hash
        # join read every line of the table for each chunk (and each short budget window) and
        # sorted the chunk's lines again. OFFSET 0 keeps the subquery from being flattened.
        joined = (
            f"{p} p CROSS JOIN LATERAL (SELECT {columns} FROM {line_table} l"
            " WHERE l.purchase_id = p.id OFFSET 0) l"
        )
    else:  # SQLite joins by nested loops over the purchase_id index anyway
        joined = f"{line_table} l JOIN {p} p ON p.id = l.purchase_id"
    lines = _rows(f"SELECT {columns} FROM {joined} WHERE {where} ORDER BY {order}", params)
    pending = next(lines, None)
    # tuple.__new__ is what LineFacts._make does, without a Python call per line.
    line_facts = partial(tuple.__new__, engine.LineFacts)
    for row in purchases:
        mine = []
        pid = row[0]
        while pending is not None and pending[0] == pid:
            if type(pending[4]) is Decimal:
                mine.append(line_facts(pending[1:]))
            else:  # SQLite: float or text
                mine.append(line_facts((*pending[1:4], Decimal(str(pending[4])))))
            pending = next(lines, None)
        yield row, tuple(mine)


def _member_bounds(size: int) -> list[int]:
    """Every `size`-th member id, in order: the chunks are [None, b0), [b0, b1) … [bn, None).

    One index-only read; the first and the last chunk are open so that no purchase falls
    between chunks whatever ids the members have.
    """
    table = Member._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM (SELECT id, ROW_NUMBER() OVER (ORDER BY id) AS n FROM {table}) m"  # noqa: S608 - names are ours
            " WHERE n %% %s = 0 ORDER BY id",
            [size],
        )
        return [row[0] for row in cursor.fetchall()]


def _id_range(field: str, low: int | None, high: int | None) -> dict:
    bounds = {}
    if low is not None:
        bounds[f"{field}__gte"] = low
    if high is not None:
        bounds[f"{field}__lt"] = high
    return bounds


def _member_facts_of(low: int | None, high: int | None) -> dict[int, tuple]:
    """Member id → (tier, multiplier, birth date, enrolment as epoch seconds or a datetime),
    raw: a chunk holds every member in its range, most of whom may not have bought in the
    period, so the conversions wait for the members that did (_member_facts)."""
    enrolled = (
        "EXTRACT(EPOCH FROM m.enrolled_at)::float8"
        if connection.vendor == "postgresql"
        else "m.enrolled_at"
    )
    member_range, params = "", []
    if low is not None:
        member_range += " AND m.id >= %s"
        params.append(low)
    if high is not None:
        member_range += " AND m.id < %s"
        params.append(high)
    m, tier = Member._meta.db_table, Member._meta.get_field("tier").related_model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.id, t.name, t.earn_multiplier, m.birth_date, {enrolled}"  # noqa: S608 - names are ours
            f" FROM {m} m LEFT JOIN {tier} t ON t.id = m.tier_id WHERE 1 = 1{member_range}",
            params,
        )
        return {row[0]: row[1:] for row in cursor.fetchall()}


def _member_facts(raw: tuple | None, local_tz) -> tuple:
    """(tier name, multiplier, birth date, local enrolment date) from a _member_facts_of row."""
    if raw is None:
        return ("", Decimal(1), None, None)
    tier, multiplier, birth, enrolled = raw
    if type(enrolled) is float:
        enrolled = datetime.fromtimestamp(enrolled, local_tz).date()
    elif enrolled is not None:
        if isinstance(enrolled, str):  # SQLite hands raw rows out as text
            enrolled = datetime.fromisoformat(enrolled)
        if timezone.is_naive(enrolled):
            enrolled = timezone.make_aware(enrolled, UTC)
        enrolled = enrolled.astimezone(local_tz).date()
    if isinstance(birth, str):
        birth = date.fromisoformat(birth)
    if multiplier is None:
        multiplier = Decimal(1)
    elif type(multiplier) is not Decimal:
        multiplier = Decimal(str(multiplier))
    return (tier or "", multiplier, birth, enrolled)


def _member_chunk_rows(start: datetime, end: datetime, low, high, with_lines: bool):
    """Yield (purchase row, [LineFacts]) of the members with ids in [low, high), in member,
    then occurred_at order (purchase_member_window serves the range)."""
    member_range = ""
    extra = []
    if low is not None:
        member_range += " AND p.member_id >= %s"
        extra.append(low)
    if high is not None:
        member_range += " AND p.member_id < %s"
        extra.append(high)
    yield from _stream_rows(
        start, end, with_lines, member_range=member_range, extra=extra, by_member=True
    )


@dataclass
class _MemberPurchases:
    """One member's purchases of the period, in time order, with what the engine knows of them."""

    facts: engine.MemberFacts
    bought_before: bool
    purchases: list  # (occurred_at epoch or datetime, purchase id, local time, PurchaseFacts)


def _members_purchases(
    *,
    start: datetime,
    end: datetime,
    with_lines: bool,
    needs_first: bool,
    segment_definitions: dict[int, dict],
    chunk_members: int,
):
    """Yield a _MemberPurchases per member with purchases in start..end, in member id order.

    Members are read in id-ordered chunks of `chunk_members`, each chunk with its purchases,
    its members' facts, their segments (one query a segment) and whether they bought before
    the period: what is held at once is one chunk, whatever the number of members.
    """
    local_tz = timezone.get_current_timezone()
    bounds = _member_bounds(chunk_members)
    for low, high in zip([None, *bounds], [*bounds, None], strict=True):
        members = _member_facts_of(low, high)
        held: dict[int, set[int]] = defaultdict(set)
        for segment_id, definition in segment_definitions.items():
            chosen = segments.members(definition).filter(**_id_range("pk", low, high))
            for member_id in chosen.values_list("pk", flat=True):
                held[member_id].add(segment_id)
        bought_before: set[int] = set()
        if needs_first:
            bought_before = set(
                Purchase.objects.filter(occurred_at__lt=start, **_id_range("member_id", low, high))
                .exclude(status=Purchase.Status.REJECTED)
                .values_list("member_id", flat=True)
                .distinct()
            )
        current = None
        purchase_facts = partial(tuple.__new__, engine.PurchaseFacts)
        from_epoch = datetime.fromtimestamp
        for row, lines in _member_chunk_rows(start, end, low, high, with_lines):
            pid, member_id, amount, occurred_at, channel, store, currency = row[:7]
            if current is None or current.facts.member_id != member_id:
                if current is not None:
                    yield current
                tier, multiplier, birth, enrolled = _member_facts(members.get(member_id), local_tz)
                facts = engine.MemberFacts(
                    member_id,
                    tier,
                    multiplier,
                    False,
                    birth,
                    enrolled,
                    segments=frozenset(held.get(member_id, ())),
                )
                current = _MemberPurchases(facts, member_id in bought_before, [])
            if type(occurred_at) is float:
                local = from_epoch(occurred_at, local_tz)
            else:
                local = _local(occurred_at, local_tz)
            if type(amount) is not Decimal:
                amount = Decimal(str(amount))
            purchase = purchase_facts((amount, local, channel, store, currency, lines))
            # The time-order key: the epoch float, or the aware time (never SQLite's text).
            at = occurred_at if type(occurred_at) is float else local
            current.purchases.append((at, pid, local, purchase))
        if current is not None:
            yield current


# A budget in the replay that cannot run out (budgets are handled by day, see simulate).
_UNLIMITED = 2**62


def _budget_relevant(specs: list[engine.RuleSpec]) -> list[engine.RuleSpec]:
    """The rules whose presence can change what a budgeted rule gives: itself, every rule that
    does not stack (one of them wins), and the rate rules when a budgeted rule multiplies."""
    budgeted = [s for s in specs if s.budget_remaining is not None]
    multiplies = any(s.kind == engine.MULTIPLIER for s in budgeted)
    return [
        s
        for s in specs
        if s.budget_remaining is not None or not s.stacks or (multiplies and s.kind == engine.RATE)
    ]


class _MemberReplay:
    """The per-member state of a replay: its cap periods. Reset for each member."""

    def __init__(self, specs: list[engine.RuleSpec], cap_periods: dict[int, str]):
        self.prepared = engine.PreparedRules(specs)
        self.capped = [s.id for s in specs if s.cap_per_member is not None]
        self.cap_periods = cap_periods
        # The local day each budgeted rule runs out on: unlimited until then, nothing after.
        self.runs_out: dict[int, date] = {}

    def run(self, member: _MemberPurchases, needs_first: bool):
        """Yield (purchase tuple, Evaluation) for each of the member's purchases."""
        cap_state: dict[int, tuple] = {}
        first_pending = needs_first and not member.bought_before
        base = member.facts
        for item in member.purchases:
            local = item[2]
            earned = {}
            for rule_id in self.capped:
                state = cap_state.get(rule_id)
                if state and state[0] == _period_key(self.cap_periods[rule_id], local):
                    earned[rule_id] = state[1]
            if self.runs_out:
                day = local.date()
                budget = self.prepared.budget
                for rule_id, out_on in self.runs_out.items():
                    budget[rule_id] = _UNLIMITED if day <= out_on else 0
            facts = base
            if first_pending or earned:
                facts = base._replace(first_purchase=first_pending, earned_in_period=earned)
                first_pending = False
            result = engine.evaluate(
                purchase=item[3], member=facts, rules=self.prepared, explain=False
            )
            for award in result.awards:
                if award.rule_id in self.cap_periods:
                    key = _period_key(self.cap_periods[award.rule_id], local)
                    state = cap_state.get(award.rule_id)
                    before = state[1] if state and state[0] == key else 0
                    cap_state[award.rule_id] = (key, before + award.points)
            yield item, result


def _budget_windows(start: datetime, end: datetime, *, first_days: int) -> list[tuple]:
    """start..end cut into consecutive windows of first_days, then four times as long each
    time: a budget that runs out early is found after reading a few days, one that never does
    after four windows for a year (each window reads its members' facts again: measured at a
    year and 100k members, doubling cost a budget that never runs out 6-9 s more than one
    window)."""
    windows = []
    low, days = start, first_days
    while low < end:
        high = min(low + timedelta(days=days), end)
        windows.append((low, high))
        low, days = high, days * 4
    return windows


def _runs_out(by_day: dict[int, dict[date, int]], budgets: dict[int, int]) -> dict:
    """Each budget that runs out: the day it does, and what its rule gave before that day."""
    runs_out = {}
    for rule_id, days in by_day.items():
        given = 0
        for day in sorted(days):
            if given + days[day] >= budgets[rule_id]:
                runs_out[rule_id] = (day, given)
                break
            given += days[day]
    return runs_out


def _budget_days(
    *,
    specs,
    cap_periods,
    budgets: dict[int, int],
    stream_args: dict,
    needs_first: bool,
) -> dict[int, tuple[date, int]]:
    """For each budgeted rule that runs out in the period: the local day it runs out on, and
    what it gave before that day. A light replay of only the rules that matter to the budgeted
    ones, with unlimited budgets: until its budget runs out a rule gives what it would give
    unlimited (a budget caps only the rule's own points; the winner among the rules that do
    not stack is chosen before caps, and a multiplier multiplies the rates, not their points).

    The replay reads the period in windows of growing length (_budget_windows), each member by
    member, and stops after the window in which the last budget ran out: a window holds every
    purchase of its days, so once a budget's running total reaches it on a day, every earlier
    day is complete and the answer is final. A member's state across windows is whether they
    bought before (the window's own query asks it) and their per-member caps, which no query
    knows: when one of these rules has a per-member cap the period is one window.
    """
    relevant = [dataclasses.replace(s, budget_remaining=None) for s in _budget_relevant(specs)]
    replay = _MemberReplay(relevant, cap_periods)
    by_day: dict[int, dict[date, int]] = {rule_id: defaultdict(int) for rule_id in budgets}
    start, end = stream_args["start"], stream_args["end"]
    if any(s.cap_per_member is not None for s in relevant):
        windows = [(start, end)]
    else:
        windows = _budget_windows(start, end, first_days=BUDGET_WINDOW_DAYS)
    runs_out = {}
    for low, high in windows:
        for member in _members_purchases(**{**stream_args, "start": low, "end": high}):
            for item, result in replay.run(member, needs_first):
                for award in result.awards:
                    if award.rule_id in by_day:
                        by_day[award.rule_id][item[2].date()] += award.points
        runs_out = _runs_out(by_day, budgets)
        if len(runs_out) == len(budgets):
            break
    return runs_out


def simulate(
    *,
    start: datetime,
    end: datetime,
    rules: list[EarningRule] | None = None,
    point_value: Decimal | None = None,
    top: int = 10,
    progress=None,
    chunk_members: int = CHUNK_MEMBERS,
    per_member: bool = True,
) -> SimulationReport:
    """Replay start..end through `rules` (default: the rules in play). `progress` is called with
    the number of purchases read since its last call (every PROGRESS_EVERY, and at the end).

    Members are replayed one after the other, in id-ordered chunks of `chunk_members` (see
    _members_purchases): every rule's state but a budget is the member's own. A rule's total
    budget is shared in time order, so it is settled by day: a light first replay finds the
    day each budget runs out (_budget_days); in the full replay the rule is unlimited before
    that day and gives nothing after it, and that day's purchases that it rewards are put
    aside and settled in time order at the end (a day's worth, not the period's). The result
    is the same as one replay of all purchases in time order. `per_member=False` leaves out
    `points_by_member` (a dict of every member reached: the command and the admin only show
    the top members).
    """
    if end <= start:
        raise ValueError(f"end ({end}) must be after start ({start})")
    began = time.monotonic()
    if rules is None:
        rules = list(selectors.rules_in_play())
    # Budgets start full: the question is what the rules would have issued from the start.
    specs = [
        dataclasses.replace(selectors.rule_spec(r), budget_remaining=r.budget_points) for r in rules
    ]
    by_id = {r.pk: r for r in rules}
    point_value = point_value if point_value is not None else settings.LOYALTY_POINT_VALUE
    report = SimulationReport(start=start, end=end)
    if not specs:
        report.seconds = time.monotonic() - began
        return report

    needs_first = any(s.first_purchase_only for s in specs)
    cap_periods = {s.id: by_id[s.id].cap_period for s in specs if s.cap_per_member is not None}
    budgets = {s.id: s.budget_remaining for s in specs if s.budget_remaining is not None}
    # The rules the engine would skip take no part, budgeted or not.
    usable = {entry[0].id for entry in engine.PreparedRules(specs).entries}
    budgets = {rule_id: left for rule_id, left in budgets.items() if rule_id in usable}
    segment_definitions = selectors.rule_segment_definitions(rules)

    def stream_args(for_specs):
        return {
            "start": start,
            "end": end,
            "with_lines": any(s.filters_lines for s in for_specs),
            "needs_first": any(s.first_purchase_only for s in for_specs),
            "segment_definitions": segment_definitions,
            "chunk_members": chunk_members,
        }

    runs_out: dict[int, tuple[date, int]] = {}
    if budgets:
        runs_out = _budget_days(
            specs=specs,
            cap_periods=cap_periods,
            budgets=budgets,
            stream_args=stream_args(_budget_relevant(specs)),
            needs_first=needs_first,
        )
    replay = _MemberReplay(specs, cap_periods)
    budget = replay.prepared.budget
    for rule_id in budget:
        budget[rule_id] = _UNLIMITED
    replay.runs_out = {rule_id: day for rule_id, (day, _) in runs_out.items()}
    settle_days = {day for day, _ in runs_out.values()}

    points_by_rule: dict[str, int] = defaultdict(int)
    points_by_member: dict[int, int] = {}
    top_heap: list[tuple[int, int]] = []  # (points, -member id), the `top` largest
    # The purchases put aside on a day a budget runs out: (time, id, member, tier, multiplier,
    # awards without the tier line); and what their members earned otherwise.
    aside: list[tuple] = []
    unsettled: dict[int, int] = {}

    def member_done(member_id: int, points: int) -> None:
        report.points += points
        if points <= 0:
            return
        report.members_reached += 1
        if per_member:
            points_by_member[member_id] = points
        entry = (points, -member_id)
        if len(top_heap) < top:
            heapq.heappush(top_heap, entry)
        elif top > 0 and entry > top_heap[0]:
            heapq.heapreplace(top_heap, entry)

    read = 0
    for member in _members_purchases(**stream_args(specs)):
        member_id = member.facts.member_id
        points = 0
        put_aside = False
        for item, result in replay.run(member, needs_first):
            read += 1
            if progress is not None and read % PROGRESS_EVERY == 0:
                progress(PROGRESS_EVERY)
            if not result.awards:
                continue
            day = item[2].date()
            if day in settle_days:
                affected = {r for r, (out_on, _) in runs_out.items() if out_on == day}
                if any(a.rule_id in affected for a in result.awards):
                    rewards = tuple(
                        (a.rule_id, a.rule, a.points)
                        for a in result.awards
                        if a.rule_id is not None
                    )
                    tier, multiplier = member.facts.tier, member.facts.tier_multiplier
                    aside.append((item[0], item[1], member_id, tier, multiplier, rewards))
                    put_aside = True
                    continue
            for award in result.awards:
                points += award.points
                points_by_rule[award.rule] += award.points
        if put_aside:
            unsettled[member_id] = points
        else:
            member_done(member_id, points)
    report.purchases = read
    if progress is not None and read % PROGRESS_EVERY:
        progress(read % PROGRESS_EVERY)

    # Settle the put-aside purchases in time order, as the tills would have met them.
    left = {rule_id: budgets[rule_id] - given for rule_id, (_, given) in runs_out.items()}
    for _at, _pid, member_id, tier, multiplier, rewards in sorted(aside):
        total = 0
        for rule_id, name, points in rewards:
            if rule_id in left and runs_out[rule_id][0] == _day_of(_at):
                points = min(points, max(left[rule_id], 0))
                left[rule_id] -= points
            if points > 0:
                total += points
                points_by_rule[name] += points
        if total and multiplier > 1:
            extra = engine.round_points(total * (multiplier - 1), engine.ROUND_DOWN)
            if extra > 0:
                total += extra
                points_by_rule[f"Tier {tier}".strip()] += extra
        unsettled[member_id] += total
    for member_id in sorted(unsettled):
        member_done(member_id, unsettled[member_id])

    report.cost = (Decimal(report.points) * point_value).quantize(Decimal("0.01"))
    report.points_by_rule = {name: points for name, points in points_by_rule.items() if points}
    report.points_by_member = dict(sorted(points_by_member.items())) if per_member else {}
    report.top_members = [(-negative, points) for points, negative in sorted(top_heap)[::-1]]
    report.top_members.sort(key=lambda kv: (-kv[1], kv[0]))
    report.seconds = time.monotonic() - began
    return report


def _day_of(at) -> date:
    """The local day of a streamed purchase time (epoch seconds or an aware datetime)."""
    local_tz = timezone.get_current_timezone()
    if type(at) is float:
        return datetime.fromtimestamp(at, local_tz).date()
    return at.astimezone(local_tz).date()


# -- a draft earning campaign ------------------------------------------------------------------


@dataclass
class TierLiability:
    tier: str
    points: int
    value: Decimal


@dataclass
class CampaignSimulation:
    """What a draft earning campaign would have done over a past period (see campaign_simulate).

    `points` is what its rules would have given (what its budget counts); `extra_points` is
    the change in everything members would have earned (the tier multiplier on top, and any
    programme rule a non-stacking campaign rule displaces): the cost and the liability use it.
    """

    start: datetime
    end: datetime
    audience: int = 0
    control: int = 0
    purchases: int = 0
    purchases_treated: int = 0
    points: int = 0
    extra_points: int = 0
    cost: Decimal = Decimal(0)
    currency: str = ""
    members_reached: int = 0
    budget_points: int | None = None
    budget_exhausted_on: date | None = None
    points_by_rule: dict[str, int] = field(default_factory=dict)
    liability_by_tier: list[TierLiability] = field(default_factory=list)
    seconds: float = 0.0


class _Replay:
    """One set of rules replayed over the purchases, with the state its rules depend on."""

    def __init__(self, rules: list[EarningRule], specs: list[engine.RuleSpec]):
        by_id = {r.pk: r for r in rules}
        self.prepared = engine.PreparedRules(specs)
        self.capped = [s for s in specs if s.cap_per_member is not None]
        self.cap_periods = {s.id: by_id[s.id].cap_period for s in self.capped}
        self.cap_state: dict[tuple[int, int], tuple] = {}

    def evaluate(self, purchase, facts, member_id: int, local: datetime, **kwargs):
        earned = {}
        for spec in self.capped:
            state = self.cap_state.get((member_id, spec.id))
            if state and state[0] == _period_key(self.cap_periods[spec.id], local):
                earned[spec.id] = state[1]
        if earned:
            facts = facts._replace(earned_in_period=earned)
        result = engine.evaluate(
            purchase=purchase, member=facts, rules=self.prepared, explain=False, **kwargs
        )
        for award in result.awards:
            if award.rule_id is None:
                continue
            if award.rule_id in self.cap_periods:
                key = _period_key(self.cap_periods[award.rule_id], local)
                state = self.cap_state.get((member_id, award.rule_id))
                before = state[1] if state and state[0] == key else 0
                self.cap_state[(member_id, award.rule_id)] = (key, before + award.points)
            if award.rule_id in self.prepared.budget:
                self.prepared.budget[award.rule_id] -= award.points
        return result


def campaign_simulate(
    *,
    campaign,
    first: date,
    last: date,
    point_value: Decimal | None = None,
    progress=None,
) -> CampaignSimulation:
    """Replay an earning campaign that has not started over the days first..last (included).

    The same engine as the tills, writing nothing. The audience is judged as the segment's
    members *now* (its definition evaluated today, without the programme's holdout), minus the
    campaign's control group (its own salt and share, as it will be when it starts); members are
    judged with their current tier. The campaign's rules run as if it were active over the whole
    period (its own start and end are not applied), on top of the programme's active rules
    without a campaign; other campaigns are left out. Its budget and per-member cap start full;
    the day the budget runs out is the day its last point would have been given. `progress` is
    called with the number of purchases read since its last call.
    """
    began = time.monotonic()
    tz = timezone.get_current_timezone()
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    point_value = point_value if point_value is not None else settings.LOYALTY_POINT_VALUE
    report = CampaignSimulation(start=start, end=end, currency=settings.LOYALTY_CURRENCY)

    definition = (campaign.segment.definition if campaign.segment_id else None) or {"all": []}
    audience = set(
        segments.members(definition).exclude(control.holdout_q()).values_list("pk", flat=True)
    )
    report.audience = len(audience)
    share = campaign.control_basis_points
    treated = {m for m in audience if not (share and control.bucket(m, campaign.salt) < share)}
    report.control = report.audience - len(treated)

    base_rules = list(selectors.rules_in_play().filter(campaign__isnull=True))
    own_rules = list(
        campaign.rules.filter(active=True)
        .select_related("campaign")
        .prefetch_related("tiers", "segments")
    )

    def spec(rule, **kw):
        # Budgets start full: the question is what the rules would have issued from the start.
        return dataclasses.replace(
            selectors.rule_spec(rule, **kw), budget_remaining=rule.budget_points
        )

    base_specs = [spec(r) for r in base_rules]
    own_specs = [spec(r, campaign_as_active=True) for r in own_rules]
    without = _Replay(base_rules, base_specs)
    with_campaign = _Replay(base_rules + own_rules, base_specs + own_specs)
    own_ids = {r.pk for r in own_rules}

    cid = campaign.pk
    left = budget_left(
        budget_points=campaign.budget_points,
        budget_money_points=money_in_points(campaign.budget_money, point_value),
        points_spent=0,
    )
    report.budget_points = left
    budget = {cid: left} if left is not None else {}
    member_cap = campaign.member_cap_points
    cap_period = (
        None
        if campaign.member_cap_period == Campaign.CapPeriod.LIFETIME
        else campaign.member_cap_period
    )
    member_used: dict[int, tuple] = {}

    specs = base_specs + own_specs
    with_lines = any(s.filters_lines for s in specs)
    bought_before: set[int] = set()
    needs_first = any(s.first_purchase_only for s in specs)
    if needs_first:
        bought_before = (
            set(
                Purchase.objects.filter(occurred_at__lt=start, member_id__in=treated)
                .exclude(status=Purchase.Status.REJECTED)
                .values_list("member_id", flat=True)
                .distinct()
            )
            if treated
            else set()
        )
    members = _member_facts_table()
    # A programme (or campaign) rule limited to a segment judges the member's segments as of
    # now, as the rule simulator does; without them such a rule would never match here.
    member_segments = _segments_of_members(
        selectors.rule_segment_definitions(base_rules + own_rules)
    )
    plain: dict[int, engine.MemberFacts] = {}
    campaigns = frozenset({cid})
    points_by_member: dict[int, int] = defaultdict(int)
    extra_by_tier: dict[str, int] = defaultdict(int)
    points_by_rule: dict[str, int] = defaultdict(int)
    read = 0

    for row, lines in _stream(start, end, with_lines):
        read += 1
        if progress is not None and read % 10_000 == 0:
            progress(10_000)
        report.purchases += 1
        pid, member_id, amount, occurred_at, channel, store, currency = row[:7]
        if member_id not in treated:
            continue
        local = _local(occurred_at, tz)
        report.purchases_treated += 1
        first_purchase = False
        if needs_first and member_id not in bought_before:
            first_purchase = True
            bought_before.add(member_id)
        facts = plain.get(member_id)
        if facts is None:
            tier, multiplier, birth, enrolled = members.get(member_id, ("", Decimal(1), None, None))
            facts = plain[member_id] = engine.MemberFacts(
                member_id,
                tier,
                multiplier,
                False,
                birth,
                enrolled,
                segments=member_segments.get(member_id, frozenset()),
                campaigns=campaigns,
            )
        if first_purchase:
            facts = facts._replace(first_purchase=True)
        if member_cap is not None:
            key = _period_key(cap_period, local) if cap_period else None
            used = member_used.get(member_id)
            mine = used[1] if used and used[0] == key else 0
            facts = facts._replace(campaign_left={cid: max(member_cap - mine, 0)})
        if type(amount) is not Decimal:
            amount = Decimal(str(amount))
        purchase = engine.PurchaseFacts(amount, local, channel, store, currency, tuple(lines))
        base = without.evaluate(purchase, facts, member_id, local)
        result = with_campaign.evaluate(purchase, facts, member_id, local, campaign_budget=budget)
        own = sum(a.points for a in result.awards if a.rule_id in own_ids)
        extra = result.points - base.points
        if extra:
            extra_by_tier[facts.tier] += extra
            report.extra_points += extra
        if not own:
            continue
        for award in result.awards:
            if award.rule_id in own_ids:
                points_by_rule[award.rule] += award.points
        points_by_member[member_id] += own
        if member_cap is not None:
            key = _period_key(cap_period, local) if cap_period else None
            used = member_used.get(member_id)
            before = used[1] if used and used[0] == key else 0
            member_used[member_id] = (key, before + own)
        if cid in budget:
            budget[cid] -= own
            if budget[cid] <= 0 and report.budget_exhausted_on is None:
                report.budget_exhausted_on = local.date()
    if progress is not None and read % 10_000:
        progress(read % 10_000)

    report.points = sum(points_by_member.values())
    report.members_reached = sum(1 for v in points_by_member.values() if v > 0)
    report.cost = (Decimal(report.extra_points) * point_value).quantize(Decimal("0.01"))
    report.points_by_rule = dict(points_by_rule)
    report.liability_by_tier = [
        TierLiability(
            tier=tier,
            points=points,
            value=(Decimal(points) * point_value).quantize(Decimal("0.01")),
        )
        for tier, points in sorted(extra_by_tier.items())
    ]
    report.seconds = time.monotonic() - began
    return report


# -- one rule as it is being edited, against the programme's rules ------------------------------


@dataclass
class RuleSimulation:
    """What one earning rule would have given over a past period (see rule_simulate).

    `points` is what the rule itself gives; `programme_points` what the programme's rules in
    play gave without the change, `programme_points_with` with the rule as edited in their
    place: the difference is what the change costs (a rule that does not stack can displace
    others, and the tier multiplier adds its line on top).
    """

    start: datetime
    end: datetime
    currency: str = ""
    purchases: int = 0
    points: int = 0
    members_reached: int = 0
    cost: Decimal = Decimal(0)
    points_by_day: dict[date, int] = field(default_factory=dict)
    change_by_day: dict[date, int] = field(default_factory=dict)
    programme_points: int = 0
    programme_points_with: int = 0
    extra_cost: Decimal = Decimal(0)
    budget_points: int | None = None
    budget_exhausted_on: date | None = None
    seconds: float = 0.0

    @property
    def extra_points(self) -> int:
        return self.programme_points_with - self.programme_points


def rule_simulate(
    *,
    rule: EarningRule,
    first: date,
    last: date,
    point_value: Decimal | None = None,
    progress=None,
) -> RuleSimulation:
    """Replay the days first..last (included) with `rule` as edited, writing nothing.

    `rule` may hold unsaved changes: its pk is the saved rule's, or 0 for a new one, and its
    tiers and segments must be readable without a query of its own (a saved rule's prefetched,
    an edited one's set by the editor's form). It replays as a rule of the programme, for every
    member, active or not: a campaign's audience and control group are the campaign
    simulator's. It replaces its saved version among the programme's rules in play (active,
    no campaign); its budget starts full. `progress` is called with the purchases read since
    its last call (every PROGRESS_EVERY, and at the end).
    """
    began = time.monotonic()
    tz = timezone.get_current_timezone()
    start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    point_value = point_value if point_value is not None else settings.LOYALTY_POINT_VALUE
    report = RuleSimulation(
        start=start, end=end, currency=settings.LOYALTY_CURRENCY, budget_points=rule.budget_points
    )
    days = (last - first).days + 1
    points_by_day = {first + timedelta(days=n): 0 for n in range(days)}
    change_by_day = dict(points_by_day)

    def spec(r):
        # Budgets start full: the question is what the rules would have issued from the start.
        return dataclasses.replace(selectors.rule_spec(r), budget_remaining=r.budget_points)

    base_rules = list(selectors.rules_in_play().filter(campaign__isnull=True))
    others = [r for r in base_rules if r.pk != rule.pk]
    base_specs = [spec(r) for r in base_rules]
    own = spec(rule)
    without = _Replay(base_rules, base_specs)
    with_rule = _Replay([*others, rule], [spec(r) for r in others] + [own])
    specs = [*base_specs, own]

    with_lines = any(s.filters_lines for s in specs)
    needs_first = any(s.first_purchase_only for s in specs)
    bought_before: set[int] = set()
    if needs_first:
        bought_before = set(
            Purchase.objects.filter(occurred_at__lt=start)
            .exclude(status=Purchase.Status.REJECTED)
            .values_list("member_id", flat=True)
            .distinct()
        )
    members = _member_facts_table()
    member_segments = _segments_of_members(selectors.rule_segment_definitions([*base_rules, rule]))
    plain: dict[int, engine.MemberFacts] = {}
    points_by_member: dict[int, int] = defaultdict(int)

    for row, lines in _stream(start, end, with_lines):
        report.purchases += 1
        if progress is not None and report.purchases % PROGRESS_EVERY == 0:
            progress(PROGRESS_EVERY)
        pid, member_id, amount, occurred_at, channel, store, currency = row[:7]
        local = _local(occurred_at, tz)
        facts = plain.get(member_id)
        if facts is None:
            tier, multiplier, birth, enrolled = members.get(member_id, ("", Decimal(1), None, None))
            facts = plain[member_id] = engine.MemberFacts(
                member_id,
                tier,
                multiplier,
                False,
                birth,
                enrolled,
                segments=member_segments.get(member_id, frozenset()),
            )
        if needs_first and member_id not in bought_before:
            bought_before.add(member_id)
            facts = facts._replace(first_purchase=True)
        if type(amount) is not Decimal:
            amount = Decimal(str(amount))
        purchase = engine.PurchaseFacts(amount, local, channel, store, currency, tuple(lines))
        base = without.evaluate(purchase, facts, member_id, local)
        result = with_rule.evaluate(purchase, facts, member_id, local)
        report.programme_points += base.points
        report.programme_points_with += result.points
        day = local.date()
        change = result.points - base.points
        if change and day in change_by_day:
            change_by_day[day] += change
        mine = sum(a.points for a in result.awards if a.rule_id == rule.pk)
        if not mine:
            continue
        points_by_member[member_id] += mine
        if day in points_by_day:
            points_by_day[day] += mine
        left = with_rule.prepared.budget.get(rule.pk)
        if left is not None and left <= 0 and report.budget_exhausted_on is None:
            report.budget_exhausted_on = day
    if progress is not None and report.purchases % PROGRESS_EVERY:
        progress(report.purchases % PROGRESS_EVERY)

    report.points = sum(points_by_member.values())
    report.members_reached = sum(1 for v in points_by_member.values() if v > 0)
    report.cost = (Decimal(report.points) * point_value).quantize(Decimal("0.01"))
    report.extra_cost = (Decimal(report.extra_points) * point_value).quantize(Decimal("0.01"))
    report.points_by_day = points_by_day
    report.change_by_day = change_by_day
    report.seconds = time.monotonic() - began
    return report
