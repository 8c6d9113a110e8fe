"""The builder's reads (count, sample, reachable per channel), the RFM presets on a built set
of purchase histories, and the preset command."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from campaigns import segments
from campaigns.models import Segment
from campaigns.segments import rfm
from ledger.models import Purchase
from members.database import BIG_READ_SETTINGS
from members.models import Consent, Member
from members.services import consent_grant
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)


def statements(queries) -> list[str]:
    """The SQL a read ran, less the transaction it counts in on PostgreSQL (a savepoint inside
    a test, and the big read's settings: see members.database)."""
    return [
        q["sql"]
        for q in queries
        if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))
        and q["sql"] != BIG_READ_SETTINGS
    ]


def chosen(definition):
    return set(segments.members(definition, now=NOW).values_list("pk", flat=True))


def history(member, *, last_days_ago: int, purchases: int):
    Purchase.objects.bulk_create(
        Purchase(
            member=member,
            channel="pos",
            external_id=f"{member.pk}-{n}",
            amount=Decimal("10.00"),
            currency="EUR",
            occurred_at=NOW - timedelta(days=last_days_ago + n),
        )
        for n in range(purchases)
    )


def presets_of(members) -> dict[str, set[int]]:
    found = {name: chosen({"condition": "rfm", "segment": name}) for name in rfm.PRESETS}
    every = set().union(*found.values())
    assert len(every) == sum(len(v) for v in found.values()), "a member in two presets"
    return {name: ids for name, ids in found.items() if ids}


def test_rfm_presets_follow_the_grid_when_recent_members_buy_most(db):
    # m0 bought longest ago and least often ... m9 most recently and most often: R = F.
    members = MemberFactory.create_batch(10)
    for i, member in enumerate(members):
        history(member, last_days_ago=10 - i, purchases=i + 1)
    MemberFactory()  # never bought: in no preset
    lapsed = MemberFactory()
    history(lapsed, last_days_ago=400, purchases=3)  # only outside the 365-day window
    pk = [m.pk for m in members]
    assert (
        presets_of(members)
        == {
            "lost": set(pk[0:4]),  # (1,1) and (2,2)
            "hibernating": set(pk[4:6]),  # (3,3)
            "loyal": set(pk[6:8]),  # (4,4)
            "champions": set(pk[8:10]),  # (5,5)
        }
    )


def test_rfm_presets_when_recent_members_buy_least(db):
    members = MemberFactory.create_batch(10)
    for i, member in enumerate(members):
        history(member, last_days_ago=40 - 3 * i, purchases=10 - i)
    pk = [m.pk for m in members]
    assert (
        presets_of(members)
        == {
            "cant_lose": set(pk[0:2]),  # (1,5)
            "at_risk": set(pk[2:4]),  # (2,4)
            "hibernating": set(pk[4:6]),  # (3,3)
            "potential": set(pk[6:8]),  # (4,2)
            "new": set(pk[8:10]),  # (5,1)
        }
    )


def test_rfm_window_is_configurable(db, settings):
    old, recent = MemberFactory(), MemberFactory()
    history(old, last_days_ago=200, purchases=2)
    history(recent, last_days_ago=1, purchases=1)
    settings.LOYALTY_RFM_WINDOW_DAYS = 100
    scored = set().union(*(chosen({"condition": "rfm", "segment": n}) for n in rfm.PRESETS))
    assert scored == {recent.pk}


def test_every_rf_cell_has_exactly_one_preset():
    cells = [cell for preset in rfm.PRESETS.values() for cell in preset]
    assert sorted(cells) == sorted(r * 10 + f for r in range(1, 6) for f in range(1, 6))


def test_presets_command_is_idempotent(db):
    call_command("segments_presets")
    call_command("segments_presets")
    presets = Segment.objects.filter(definition__condition="rfm")
    assert presets.count() == 8
    assert {s.definition["segment"] for s in presets} == set(rfm.PRESETS)
    for segment in presets:
        segment.full_clean()


@pytest.fixture
def audience(db):
    """Six members with a profile flag; consents and addresses vary per channel."""
    people = [MemberFactory(profile={"vip": True}) for _ in range(6)]
    MemberFactory(profile={"vip": False})
    for member in people[:4]:
        consent_grant(member=member, purpose=Consent.Purpose.MARKETING_EMAIL, channel="app")
    Member.objects.filter(pk=people[3].pk).update(email="")  # consent, but no address
    for member, phone in zip(people[2:5], ["+31611111111", "", "+31622222222"], strict=True):
        consent_grant(member=member, purpose=Consent.Purpose.SMS, channel="app")
        Member.objects.filter(pk=member.pk).update(phone=phone)
    consent_grant(member=people[5], purpose=Consent.Purpose.PUSH, channel="app")
    consent_grant(member=people[0], purpose=Consent.Purpose.MARKETING_EMAIL, channel="app")
    return people


VIP = {"condition": "profile", "key": "vip", "equals": True}


def test_count_sample_and_reachable_for_an_unsaved_definition(audience):
    assert segments.segment_count(VIP) == 6
    with CaptureQueriesContext(connection) as queries:
        reach = segments.segment_reachable(VIP)
    assert len(statements(queries)) == 1
    assert reach == {"total": 6, "email": 3, "sms": 2, "push": 1}


def test_reachable_follows_the_latest_consent(audience):
    from members.services import consent_withdraw

    consent_withdraw(member=audience[0], purpose=Consent.Purpose.MARKETING_EMAIL, channel="app")
    assert segments.segment_reachable(VIP)["email"] == 2


def test_sample_is_stable_a_spread_and_within_the_segment(audience):
    segment = Segment.objects.create(name="VIP", definition=VIP)
    first = [m.pk for m in segments.segment_sample(segment, size=4)]
    again = [m.pk for m in segments.segment_sample(VIP, size=4)]
    assert first == again
    assert len(first) == 4
    assert set(first) <= {m.pk for m in audience}
    everyone = [m.pk for m in segments.segment_sample(segment, size=20)]
    assert sorted(everyone) == sorted(m.pk for m in audience)
    assert segments.segment_count(segment) == 6


def test_segments_holding_answers_for_many_segments_in_one_query(audience):
    vip = Segment.objects.create(name="VIP", definition=VIP)
    sms = Segment.objects.create(name="SMS", definition={"condition": "consent", "purpose": "sms"})
    nobody = Segment.objects.create(name="Nobody", definition={"any": []})
    definitions = {s.pk: s.definition for s in (vip, sms, nobody)}
    with CaptureQueriesContext(connection) as queries:
        held = segments.segments_holding(member_id=audience[2].pk, definitions=definitions)
    assert len(queries) == 1
    assert held == {vip.pk, sms.pk}
    assert segments.segments_holding(member_id=audience[0].pk, definitions={}) == frozenset()


def test_the_nights_rfm_scores_give_the_same_presets_the_next_day_too_then_not(db):
    from campaigns.models import RfmScore
    from campaigns.services import rfm_scores_refresh

    members = MemberFactory.create_batch(10)
    for i, member in enumerate(members):
        history(member, last_days_ago=10 - i, purchases=i + 1)
    ranked = presets_of(members)
    assert segments.segment_rfm_basis({"condition": "rfm", "segment": "lost"}, now=NOW) == (
        segments.RfmBasis(scored_at=None)
    )

    assert rfm_scores_refresh(now=NOW) == 10
    assert RfmScore.objects.count() == 10
    # The scores are read now: tamper with them and the presets follow them, not the purchases.
    RfmScore.objects.filter(member=members[0]).update(cell=55)
    stored = presets_of(members)
    assert stored["champions"] == ranked["champions"] | {members[0].pk}
    RfmScore.objects.filter(member=members[0]).update(cell=11)
    assert presets_of(members) == ranked
    # Which scores there are is read first; the count's statement then reads only the scores.
    with CaptureQueriesContext(connection) as queries:
        segments.members({"condition": "rfm", "segment": "lost"}, now=NOW).count()
    assert len(queries) == 2
    assert "ledger_purchase" not in queries[1]["sql"] and "rfmscore" in queries[1]["sql"]
    basis = segments.segment_rfm_basis({"condition": "rfm", "segment": "lost"}, now=NOW)
    assert basis == segments.RfmBasis(scored_at=NOW)
    # The next day, before (or without) that night's refresh, the last night's are still read.
    RfmScore.objects.update(cell=55)
    champions = {"condition": "rfm", "segment": "champions"}
    next_day = NOW + timedelta(days=1)
    assert set(segments.members(champions, now=next_day).values_list("pk", flat=True)) == {
        m.pk for m in members
    }
    # Older scores are not: ranked from the purchases again, in a statement without the scores.
    later = NOW + timedelta(days=2)
    with CaptureQueriesContext(connection) as queries:
        chosen_later = set(segments.members(champions, now=later).values_list("pk", flat=True))
    assert "rfmscore" not in queries[-1]["sql"] and "ledger_purchase" in queries[-1]["sql"]
    assert chosen_later == ranked["champions"]
    assert segments.segment_rfm_basis(champions, now=later) == segments.RfmBasis(scored_at=None)
    # A second refresh replaces the scores whole.
    assert rfm_scores_refresh(now=NOW) == 10
    assert presets_of(members) == ranked


def test_a_tree_without_rfm_reads_no_scores_and_has_no_basis(db):
    tier_only = {"all": [{"condition": "tier", "in": ["Gold"]}]}
    with CaptureQueriesContext(connection) as queries:
        assert segments.segment_rfm_basis(tier_only, now=NOW) is None
        segments.segment_count(tier_only, now=NOW)
    assert len(statements(queries)) == 1


def test_an_rfm_condition_through_a_referenced_segment_has_a_basis(db):
    from campaigns.services import rfm_scores_refresh

    inner = Segment.objects.create(name="Lost", definition={"condition": "rfm", "segment": "lost"})
    outer = {"all": [{"condition": "segment", "id": inner.pk}]}
    assert segments.segment_rfm_basis(outer, now=NOW) == segments.RfmBasis(scored_at=None)
    rfm_scores_refresh(now=NOW)
    assert segments.segment_rfm_basis(outer, now=NOW) == segments.RfmBasis(scored_at=NOW)


def test_a_count_runs_as_a_big_read_on_postgresql(audience):
    if connection.vendor != "postgresql":
        pytest.skip("the JIT and the plan cache are PostgreSQL's")
    with CaptureQueriesContext(connection) as queries:
        segments.segment_count(VIP)
        segments.segment_reachable(VIP)
    sql = [q["sql"] for q in queries]
    settings = [n for n, text in enumerate(sql) if text == BIG_READ_SETTINGS]
    counts = [n for n, text in enumerate(sql) if "COUNT(" in text]
    assert len(settings) == 2 and len(counts) == 2
    assert settings[0] < counts[0] < settings[1] < counts[1]


def _plans(fragment: str) -> tuple[int, int]:
    """(generic, custom) plans PostgreSQL made for the connection's prepared statement whose
    text holds `fragment`."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements"
            " WHERE statement LIKE %s",
            [f"%{fragment}%"],
        )
        rows = cursor.fetchall()
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.django_db(transaction=True)
def test_a_count_counted_again_and_again_is_planned_for_its_values_every_time(settings):
    """Once psycopg has prepared a count (its 5th run on the connection), PostgreSQL may switch
    to one generic plan made without the dates (at a million members: 420 ms -> 5 s); a
    segment count keeps planning for its values (members.database.big_read)."""
    if connection.vendor != "postgresql":
        pytest.skip("the plan cache is PostgreSQL's")
    if settings.DATABASES["default"]["OPTIONS"].get("prepare_threshold") is None:
        pytest.skip("DATABASE_POOLER=transaction: no prepared statements")
    # A session of its own: no statement prepared by an earlier test on this connection.
    connection.close()
    member = MemberFactory()
    history(member, last_days_ago=10, purchases=3)
    recent = {"condition": "last_purchase", "window": {"days": 90}}
    queryset = segments.members(recent, now=NOW)
    # The same statement outside a big read: PostgreSQL settles on the generic plan.
    for _ in range(12):
        assert queryset.count() == 1
    generic_before, custom_before = _plans("ledger_purchase")
    assert generic_before > 0
    for _ in range(12):
        assert segments.segment_count(recent, now=NOW) == 1
    generic, custom = _plans("ledger_purchase")
    assert (generic, custom) == (generic_before, custom_before + 12)
