"""Control groups: which members of a campaign's audience are held out, deterministically.

A member's bucket for a campaign is a multiplicative hash of the member id and the campaign's
salt into 10,000 buckets: ``(member_id * salt) mod P mod 10000`` with P the prime 2**32 - 5. A
campaign with a control share of ``s`` basis points holds out the members whose bucket is below
``s``. The same arithmetic runs in Python (`bucket`) and in SQL (`bucket_expression`), so an
audience of any size is split by one query, the split is the same on every run and after the
campaign ends (the salt and share stay with it), and no assignment needs storing. Different
salts give unrelated splits, so one campaign's control group is not the next one's.

Known weakness: the hash is linear in the member id, so for some salts members with consecutive
ids (enrolled together: an import, one day's sign-ups) land in long runs on the same side of the
split. The split's size stays right (the sample-ratio check passes), but a control group can
over-represent one enrolment cohort. A non-linear mix that both databases compute is the fix.

The programme-wide holdout (``LOYALTY_HOLDOUT_BASIS_POINTS`` with ``LOYALTY_HOLDOUT_SALT``) is
the same computation with the programme's salt: members in it are in no campaign at all.
"""

import secrets

from django.conf import settings
from django.db.models import F, Q, Value
from django.db.models.expressions import Combinable
from django.db.models.lookups import LessThan

BUCKETS = 10_000
PRIME = 4_294_967_291  # 2**32 - 5; member_id * salt stays below 2**63 for ids below 2**31


def salt_new() -> int:
    return secrets.randbelow(PRIME - 1) + 1


def bucket(member_id: int, salt: int) -> int:
    return (member_id * salt) % PRIME % BUCKETS


def bucket_expression(salt: int, field: str = "pk") -> Combinable:
    return F(field) * Value(salt) % Value(PRIME) % Value(BUCKETS)


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
