"""Conditions on the member row itself: tier, profile attributes, consents, enrolment,
birthday and NPS score."""

import json
import re
from datetime import timedelta

from django.db.models import BooleanField, Expression, F, JSONField, Q, Value
from django.db.models.fields.json import HasKey, KeyTransform, KeyTransformExact
from django.db.models.functions import ExtractDay, ExtractMonth
from django.db.models.lookups import GreaterThanOrEqual, LessThanOrEqual
from django.utils.translation import gettext_lazy as _

from campaigns.segments import Condition, invalid, params, register
from members import selectors as member_selectors
from members.models import Consent


def _compile_tier(node: dict, context) -> Q:
    """By the tiers' ids, taken from the per-process ladder (`tiers_cached`, no query), not by a
    join on their names: with the ids in the statement PostgreSQL estimates the members from
    its statistics of `tier_id`. Joined by name it cannot (at 100,000 members it guessed 74,000
    in Silver and above for 7,700) and hashed every purchase of a window instead of probing
    the few members' own. A new or renamed tier is seen within LOYALTY_CONFIG_CACHE_SECONDS,
    as at the tills."""
    names = set(node["in"])
    return Q(tier_id__in=sorted(t.pk for t in member_selectors.tiers_cached() if t.name in names))


register(
    Condition(
        name="tier",
        label=_("Tier"),
        check=lambda node: params.names(node, "in"),
        compile=_compile_tier,
    )
)


def _check_consent(node: dict) -> None:
    if node.get("purpose") not in Consent.Purpose.values:
        raise invalid(
            _("Condition “consent” needs a purpose: one of %(purposes)s."),
            purposes=", ".join(Consent.Purpose.values),
        )


register(
    Condition(
        name="consent",
        label=_("Consent given"),
        check=_check_consent,
        compile=lambda node, context: Q(
            pk__in=member_selectors.members_consenting(purpose=node["purpose"]).values("pk")
        ),
    )
)


# -- profile attributes ------------------------------------------------------------------------

# Keys are plain words: they go into a JSON path, and "a__b" would read as a Django lookup.
PROFILE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ -]{0,63}$")
PROFILE_OPERATORS = ("equals", "in", "contains", "exists")
_SCALAR = (str, int, float, bool)


class ProfileContains(Expression):
    """The attribute is a text containing `value` (case-insensitively) or a list holding it.

    Hand-written per backend because Django's JSON `contains` is not available on SQLite; the
    member's `profile` column is a resolved source expression, so table aliases still apply.
    """

    output_field = BooleanField()
    conditional = True

    def __init__(self, key: str, value):
        super().__init__()
        self.key, self.value = key, value
        self.source = F("profile")

    def get_source_expressions(self):
        return [self.source]

    def set_source_expressions(self, exprs):
        (self.source,) = exprs

    def resolve_expression(
        self, query=None, allow_joins=True, reuse=None, summarize=False, for_save=False
    ):
        copy = self.copy()
        copy.source = self.source.resolve_expression(query, allow_joins, reuse, summarize, for_save)
        return copy

    def as_sql(self, compiler, connection):  # SQLite
        column, column_params = compiler.compile(self.source)
        path = f'$."{self.key}"'
        text = self.value if isinstance(self.value, str) else json.dumps(self.value)
        sql = (
            f"(CASE json_type({column}, %s)"
            f" WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({column}, %s) AS item"
            f" WHERE item.value = %s)"
            f" WHEN 'text' THEN instr(lower(json_extract({column}, %s)), lower(%s)) > 0"
            f" ELSE 0 END)"
        )
        return sql, [
            *column_params,
            path,
            *column_params,
            path,
            self.value,
            *column_params,
            path,
            text,
        ]

    def as_postgresql(self, compiler, connection):
        column, column_params = compiler.compile(self.source)
        text = self.value if isinstance(self.value, str) else json.dumps(self.value)
        sql = (
            f"(CASE jsonb_typeof({column} -> %s)"
            f" WHEN 'array' THEN ({column} -> %s) @> %s::jsonb"
            f" WHEN 'string' THEN strpos(lower({column} ->> %s), lower(%s)) > 0"
            f" ELSE false END)"
        )
        return sql, [
            *column_params,
            self.key,
            *column_params,
            self.key,
            json.dumps([self.value]),
            *column_params,
            self.key,
            text,
        ]


def _check_profile(node: dict) -> None:
    key = node.get("key")
    if not isinstance(key, str) or not PROFILE_KEY.match(key) or "__" in key:
        raise invalid(_("Condition “profile” needs “key”: a profile attribute's name."))
    given = [op for op in PROFILE_OPERATORS if op in node]
    if len(given) != 1:
        raise invalid(
            _("Condition “profile” needs exactly one of %(operators)s."),
            operators=", ".join(PROFILE_OPERATORS),
        )
    (op,) = given
    value = node[op]
    if op == "exists":
        ok = isinstance(value, bool)
    elif op == "in":
        ok = isinstance(value, list) and bool(value) and all(isinstance(v, _SCALAR) for v in value)
    elif op == "contains":
        ok = isinstance(value, _SCALAR) and not isinstance(value, bool) and value != ""
    else:
        ok = isinstance(value, _SCALAR)
    if not ok:
        raise invalid(
            _("Condition “profile”: the value of “%(operator)s” is not valid."), operator=op
        )


def _equals(key: str, value) -> Q:
    # The value as JSON (so 2 is not "2"); built as expressions, since a key such as "in"
    # or "contains" would read as a lookup in the keyword form profile__<key>.
    return Q(
        KeyTransformExact(KeyTransform(key, "profile"), Value(value, output_field=JSONField()))
    )


def _compile_profile(node: dict, context) -> Q:
    key = node["key"]
    if "exists" in node:
        has = Q(HasKey(F("profile"), key))
        return has if node["exists"] else ~has
    if "equals" in node:
        return _equals(key, node["equals"])
    if "in" in node:
        q = Q()
        for value in node["in"]:
            q |= _equals(key, value)
        return q
    return Q(ProfileContains(key, node["contains"]))


register(
    Condition(
        name="profile",
        label=_("Profile attribute"),
        check=_check_profile,
        compile=_compile_profile,
    )
)


# -- enrolment ---------------------------------------------------------------------------------

register(
    Condition(
        name="enrolled",
        label=_("Enrolled in a period"),
        check=lambda node: params.check_window(node, required=True),
        compile=lambda node, context: params.window_q("enrolled_at", node["window"], context.now),
    )
)

register(
    Condition(
        name="enrolment_channel",
        label=_("Enrolled through a channel"),
        check=lambda node: params.names(node, "in"),
        compile=lambda node, context: Q(enrolled_channel__in=node["in"]),
    )
)


# -- birthday ----------------------------------------------------------------------------------


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _compile_birthday(node: dict, context) -> Q:
    """Birthday today or within the next `days` days (today counts), in the local calendar.

    Compares month * 100 + day of the birth date with the days of the window, so a window
    that runs past 31 December wraps to January. Someone born on 29 February celebrates on
    28 February in a year without it (as the earning engine's birthday rule does).
    """
    first = params.today(context.now)
    last = first + timedelta(days=node["days"])
    if node["days"] >= 365:
        return Q(birth_date__isnull=False)
    month_day = ExtractMonth("birth_date") * 100 + ExtractDay("birth_date")
    low, high = first.month * 100 + first.day, last.month * 100 + last.day
    if low <= high:
        q = Q(GreaterThanOrEqual(month_day, low)) & Q(LessThanOrEqual(month_day, high))
    else:  # wraps past the new year
        q = Q(GreaterThanOrEqual(month_day, low)) | Q(LessThanOrEqual(month_day, high))
    day = first
    while day <= last:
        if (day.month, day.day) == (2, 28) and not _leap(day.year):
            q |= Q(birth_date__month=2, birth_date__day=29)
            break
        day += timedelta(days=1)
    return Q(birth_date__isnull=False) & q


register(
    Condition(
        name="birthday",
        label=_("Birthday within days"),
        check=lambda node: params.days(node, maximum=366),
        compile=_compile_birthday,
    )
)


# -- NPS -----------------------------------------------------------------------------------------


def _check_nps(node: dict) -> None:
    params.check_bounds(node)
    for key in ("min", "max"):
        if key in node and not 0 <= node[key] <= 10:
            raise invalid(_("Condition “nps”: scores run from 0 to 10."))
    params.check_window(node)


def _compile_nps(node: dict, context) -> Q:
    """The member's latest NPS score (0–10) within the bounds; with a window, given in it."""
    q = Q(nps_score__isnull=False) & params.bounds_q(F("nps_score"), node)
    return q & params.window_q("nps_at", node.get("window"), context.now)


register(Condition(name="nps", label=_("NPS score"), check=_check_nps, compile=_compile_nps))
