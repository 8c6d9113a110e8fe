"""Control groups: which members of a campaign's audience are held out, deterministically.

A member's bucket for a campaign is a hash of the member id and the campaign's salt into 10,000
buckets, computed modulo the Mersenne prime M = 2**31 - 1::

    x = (member_id mod M) * salt mod M
    x = (x * x + salt) mod M          # twice
    bucket = x mod 10000

A campaign with a control share of ``s`` basis points holds out the members whose bucket is below
``s``. The same integer arithmetic runs in Python (`bucket`) and in SQL (`bucket_expression`) on
PostgreSQL and SQLite (every product stays below 2**62, so neither database overflows), so an
audience of any size is split by one query, the split is the same on every run and after the
campaign ends (the salt and share stay with it), and no assignment needs storing. The two
squaring rounds make the hash non-linear in the id: members with consecutive ids (enrolled
together: an import, one day's sign-ups) fall on either side like coin tosses, not in runs, and
different salts give unrelated splits, so one campaign's control group is not the next one's.

The programme-wide holdout (``LOYALTY_HOLDOUT_BASIS_POINTS`` with ``LOYALTY_HOLDOUT_SALT``) is
the same computation with the programme's salt: members in it are in no campaign at all.
"""

import secrets

from django.conf import settings
from django.db.models import BigIntegerField, F, Q, Value
from django.db.models.expressions import Combinable
from django.db.models.functions import Cast
from django.db.models.lookups import LessThan

BUCKETS = 10_000
PRIME = 2**31 - 1  # a salt is in 1 .. PRIME - 1; every value below is below PRIME
ROUNDS = 2


def salt_new() -> int:
    return secrets.randbelow(PRIME - 1) + 1


def bucket(member_id: int, salt: int) -> int:
    x = member_id % PRIME * salt % PRIME
    for _ in range(ROUNDS):
        x = (x * x + salt) % PRIME
    return x % BUCKETS


def bucket_expression(salt: int, field: str = "pk") -> Combinable:
    """`bucket` as a SQL expression over the member id in `field` (bigint arithmetic)."""
    prime, value = Value(PRIME, output_field=BigIntegerField()), Value(salt, BigIntegerField())
    x = Cast(F(field), BigIntegerField()) % prime * value % prime
    for _ in range(ROUNDS):
        x = (x * x + value) % prime
    return x % Value(BUCKETS, output_field=BigIntegerField())


def in_control_q(*, salt: int, share: int, field: str = "pk") -> Q:
    """Members (by `field`, a member id) in the control group of a share of `share` buckets."""
    if share <= 0:
        return Q(pk__in=[])
    return Q(LessThan(bucket_expression(salt, field), share))


def holdout_q(field: str = "pk") -> Q:
    """Members in the programme-wide holdout (no campaign reaches them); nobody by default."""
    return in_control_q(
        salt=settings.LOYALTY_HOLDOUT_SALT, share=settings.LOYALTY_HOLDOUT_BASIS_POINTS, field=field
    )
