"""Reads about members that the admin, the API and the other apps share."""

import contextlib
import hashlib
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import CharField, Count, F, Func, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Lower

from members import cardnumbers, config_cache
from members.errors import CardBlocked, CardNotFound, InvalidPhone, MemberNotFound
from members.models import AuditEntry, Card, Consent, ErasedIdentity, Member, Tier, TierHistory
from members.normalise import phone_normalise


def card_active(number: str | None) -> Card:
    """The active card with this number as a channel sends it (spaces and dashes ignored), with
    its member: the one card lookup of every channel (card lookup, purchases).

    Blocked and replaced cards fail in every channel. Erasure blocks a member's cards; should an
    erased member's card still be active, the member is gone all the same.
    """
    number = cardnumbers.normalise(number)
    if "\x00" in number:  # PostgreSQL cannot even compare it; no card has one
        raise CardNotFound()
    card = Card.objects.select_related("member").filter(number=number).first()
    if card is None:
        raise CardNotFound()
    if card.status != Card.Status.ACTIVE:
        raise CardBlocked()
    if card.member.status == Member.Status.ERASED:
        raise MemberNotFound()
    return card


def card_active_member(number: str) -> Member:
    """The member behind an active card (see `card_active`)."""
    return card_active(number).member


def consents_current(*, member: Member) -> dict[str, dict]:
    """Per purpose: granted or not, and the record that decided it (None: never asked)."""
    current: dict[str, dict] = {
        purpose: {"granted": False, "at": None, "channel": "", "wording_version": ""}
        for purpose in Consent.Purpose.values
    }
    seen = set()
    for consent in Consent.objects.filter(member=member).order_by("-at", "-id"):
        if consent.purpose in seen:
            continue
        seen.add(consent.purpose)
        current[consent.purpose] = {
            "granted": consent.action == Consent.Action.GRANT,
            "at": consent.at,
            "channel": consent.channel,
            "wording_version": consent.wording_version,
        }
    return current


def consent_granted(*, member: Member, purpose: str) -> bool:
    return consents_current(member=member)[purpose]["granted"]


def members_consenting(*, purpose: str, members: QuerySet | None = None) -> QuerySet:
    """Members whose latest record for ``purpose`` is a grant (for sends and segments)."""
    latest = (
        Consent.objects.filter(member=OuterRef("pk"), purpose=purpose)
        .order_by("-at", "-id")
        .values("action")[:1]
    )
    members = members if members is not None else Member.objects.all()
    return members.annotate(_consent=Subquery(latest)).filter(
        _consent=Consent.Action.GRANT, status=Member.Status.ACTIVE
    )


# A term the search box takes for a phone number (a card number looks like one too).
PHONE_LIKE = re.compile(r"\+?[\d\s()./-]{6,}")


def member_search_q(term: str) -> Q | None:
    """One search box: card number, e-mail, phone, external id or name.

    Every branch is an exact match or a prefix match on an indexed expression (see migration
    0003), so the search stays fast on a million members; no ``%term%`` scans. A card number is
    resolved to its member's id here, with one lookup on the card number's unique index:
    ``id IN (card subquery)`` ORed with the other branches made PostgreSQL scan every member.
    """
    term = " ".join((term or "").split())
    if not term:
        return None
    lowered = term.lower()
    query = Q(external_id=term)
    digits = cardnumbers.normalise(term)
    if digits.isdigit() and cardnumbers.is_valid(digits):
        member_id = Card.objects.filter(number=digits).values_list("member_id", flat=True).first()
        if member_id is not None:
            query |= Q(pk=member_id)
    if "@" in term:
        return query | Q(email_lower__startswith=lowered)
    if PHONE_LIKE.fullmatch(term):
        with contextlib.suppress(InvalidPhone):
            query |= Q(phone=phone_normalise(term))
        return query
    words = lowered.split(" ")
    query |= Q(last_name_lower__startswith=lowered) | Q(first_name_lower__startswith=lowered)
    if len(words) > 1:
        query |= Q(first_name_lower__startswith=words[0]) & Q(
            last_name_lower__startswith=" ".join(words[1:])
        )
    return query


def member_search(*, term: str, members: QuerySet | None = None) -> QuerySet:
    members = members if members is not None else Member.objects.all()
    query = member_search_q(term)
    if query is None:
        return members
    return (
        members.annotate(
            email_lower=Lower("email"),
            last_name_lower=Lower("last_name"),
            first_name_lower=Lower("first_name"),
        )
        .filter(query)
        .order_by(F("last_name").asc(), "pk")
    )


class NameOrder(Func):
    """A name lowered, compared byte by byte: the expression of the ``member_last_name_order``
    index (migration 0013), so a prefix of it is a range of that index and the range comes in
    this order. PostgreSQL compares in the "C" collation; SQLite's default already is bytewise.

    ``indexed=False`` is the same value in an expression no index has (``|| ''``), for ordering
    a part of the search that the index must not read: "first names starting with jan, in
    last-name order" read through the last-name index scans it from the start until enough
    Jans turn up, and when the Jans' last names sort late that is most of the table (90,000
    rows, 200 ms at 100k members); through the first-name index it reads the Jans only."""

    function = "LOWER"
    output_field = CharField()

    def __init__(self, expression, *, indexed: bool = True):
        super().__init__(expression)
        if not indexed:
            self.template = "(%(function)s(%(expressions)s) || '')"

    def as_postgresql(self, compiler, connection, **extra_context):
        sql, params = self.as_sql(compiler, connection, **extra_context)
        return f'({sql} COLLATE "C")', params


def _name_branches(term: str) -> list[tuple[Q, str]] | None:
    """The parts of ``member_search_q`` for a name, each on its own with the annotation that
    orders it (None: the term is a card, an e-mail or a phone number, which find a member or
    two by a unique index)."""
    if "@" in term or PHONE_LIKE.fullmatch(term):
        return None
    lowered = term.lower()
    words = lowered.split(" ")
    branches = [
        (Q(external_id=term), "last_name_order"),
        (Q(last_name_order__startswith=lowered), "last_name_order"),
        (Q(first_name_lower__startswith=lowered), "last_name_sort"),
    ]
    if len(words) > 1:
        first_last = Q(first_name_lower__startswith=words[0]) & Q(
            last_name_order__startswith=" ".join(words[1:])
        )
        branches.append((first_last, "last_name_order"))
    return branches


def member_search_ids(term: str, *, limit: int, offset: int = 0) -> list[int]:
    """The ids of the members one search box finds, from the `offset`-th, at most `limit`.

    A card, an e-mail or a phone number is one query (``member_search``). A name is searched
    in two steps, ids first: each part of the search (last-name prefix, first-name prefix, "first
    last", external id) on its own, ordered by the lowered last name and id and cut at
    offset + limit rows, then merged. ORed into one query, the parts were one bitmap scan that
    read every match from the table to sort them (5,000 rows for "de J" among 100,000 members,
    ten times as many at a million); the last-name prefix alone is a range of
    ``member_last_name_order`` read in its order, and stops after offset + limit rows. A
    first-name prefix reads its matches by the first-name index and keeps the first rows in
    last-name order (see ``NameOrder``).
    """
    term = " ".join((term or "").split())
    if not term:
        return []
    branches = _name_branches(term)
    if branches is None:
        found = member_search(term=term).values_list("pk", flat=True)
        return list(found[offset : offset + limit])
    members = Member.objects.annotate(
        last_name_order=NameOrder("last_name"),
        last_name_sort=NameOrder("last_name", indexed=False),
        first_name_lower=Lower("first_name"),
    )
    keys: set[tuple[str, int]] = set()
    for branch, order in branches:
        keys.update(
            members.filter(branch).order_by(order, "pk").values_list(order, "pk")[: offset + limit]
        )
    return [pk for _, pk in sorted(keys)][offset : offset + limit]


def member_search_rows(
    *, term: str, offset: int, limit: int, members: QuerySet | None = None
) -> list[Member]:
    """The members one search box finds, from the `offset`-th, at most `limit`, in the order of
    ``member_search_ids``; `members` may add ``select_related``. A card, an e-mail or a phone
    number stays one query; a name is its ids first, then those rows."""
    members = members if members is not None else Member.objects.all()
    term = " ".join((term or "").split())
    if _name_branches(term) is None:
        return list(member_search(term=term, members=members)[offset : offset + limit])
    ids = member_search_ids(term, offset=offset, limit=limit)
    by_id = {member.pk: member for member in members.filter(pk__in=ids)} if ids else {}
    return [by_id[pk] for pk in ids if pk in by_id]


def member_ids_search(term: str, *, limit: int) -> list[int]:
    """The ids of at most `limit` members that one search box finds: the member's id or public
    id typed whole, or what ``member_search`` finds (card, e-mail, phone, external id, name)."""
    term = (term or "").strip()
    if not term:
        return []
    ids = []
    if term.isdecimal() and len(term) <= 18:
        ids += Member.objects.filter(pk=int(term)).values_list("pk", flat=True)
    with contextlib.suppress(ValueError):
        ids += Member.objects.filter(public_id=uuid.UUID(term)).values_list("pk", flat=True)
    found = member_search_ids(term, limit=limit)
    return list(dict.fromkeys([*ids, *found]))[:limit]


def cards_for(*, member: Member) -> QuerySet[Card]:
    """The member's cards, the newest first, each with the card that replaced it."""
    return (
        Card.objects.filter(member=member)
        .select_related("replaced_by")
        .order_by("-issued_at", "-id")
    )


def consent_history(*, member: Member) -> QuerySet[Consent]:
    """Every grant and withdrawal of the member, newest first, with the staff user who made it."""
    return Consent.objects.filter(member=member).select_related("actor").order_by("-at", "-id")


def tier_history_for(*, member: Member) -> QuerySet[TierHistory]:
    return (
        TierHistory.objects.filter(member=member)
        .select_related("from_tier", "to_tier", "actor")
        .order_by("-at", "-id")
    )


def audit_trail_for(*, member: Member) -> QuerySet[AuditEntry]:
    """Who changed what about the member, when and why, newest first."""
    return AuditEntry.objects.filter(member=member).select_related("actor").order_by("-at", "-id")


def tiers_cached() -> list[Tier]:
    """The ladder from the per-process copy (config_cache): a new tier applies within seconds."""
    return config_cache.cached("tiers", lambda: list(Tier.objects.all()))


@dataclass
class TierStep:
    """One step of the ladder as marketing reads it: the tier, how many members hold it now,
    and how many moved into it from below (up) or from above (down) since a moment."""

    tier: Tier
    members: int = 0
    moved_up: int = 0
    moved_down: int = 0
    left: int = 0


def tier_ladder(*, since: datetime) -> list[TierStep]:
    """The ladder, lowest rank first, with the members in each tier now (erased members not
    counted) and the tier changes since `since` from the tier history. Three queries, each
    grouped in the database: the tiers, the members per tier, the changes per (from, to).

    A change is up or down by the ranks of its two tiers; an enrolment (no tier before) and a
    member leaving the ladder (no tier after) are neither.
    """
    tiers = list(Tier.objects.order_by("rank"))
    steps = {tier.pk: TierStep(tier=tier) for tier in tiers}
    holding = (
        Member.objects.exclude(status=Member.Status.ERASED)
        .filter(tier__isnull=False)
        .values("tier")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in holding:
        steps[row["tier"]].members = row["n"]
    rank = {tier.pk: tier.rank for tier in tiers}
    changes = (
        TierHistory.objects.filter(at__gte=since, from_tier__isnull=False, to_tier__isnull=False)
        .values("from_tier", "to_tier")
        .annotate(n=Count("pk"))
        .order_by()
    )
    for row in changes:
        source, target = row["from_tier"], row["to_tier"]
        if rank[target] > rank[source]:
            steps[target].moved_up += row["n"]
        elif rank[target] < rank[source]:
            steps[target].moved_down += row["n"]
        else:
            continue
        steps[source].left += row["n"]
    return [steps[tier.pk] for tier in tiers]


def tier_entry() -> Tier | None:
    """The tier a member holds without qualifying points: the highest with a threshold of 0."""
    return max((t for t in tiers_cached() if t.threshold <= 0), key=lambda t: t.rank, default=None)


# What identifies a person in an import file: an erased member's values are remembered as digests.
IDENTITY_FIELDS = ("email", "phone", "external_id")


def identity_digest(kind: str, value) -> str | None:
    """SHA-256 of a normalised e-mail, phone or external id (None for an empty one)."""
    value = str(value or "").strip()
    if kind == "email":
        value = value.lower()
    if not value:
        return None
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()


def identity_erased(**values) -> bool:
    """Whether any of these (email=, phone=, external_id=) belonged to an erased member."""
    digests = [identity_digest(kind, value) for kind, value in values.items()]
    return ErasedIdentity.objects.filter(digest__in=[d for d in digests if d]).exists()
