"""The yardstick for `make bench`: an earn in hand-written SQL, the least Django can do.

Same writes as `POST /api/v1/purchases/` with the bench's one-rule programme (1 point per unit
of money): check the key, lock the account, insert the purchase, its lines, the ledger entry and
its lot, the rule's award and the purchase's points record, update the balance. No rules engine,
no idempotency, no abuse checks, no tiers, no first-purchase check.
Mounted at /api/bench/earn/ only when LOYALTY_BENCH is on (loyalty_site/api/urls.py), beside
/api/bench/noop/: the floor, a view that answers without touching the database.
"""

import json
import uuid
from decimal import Decimal

from django.db import connection, transaction
from django.http import JsonResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from rest_framework_api_key.crypto import KeyGenerator

_keys = KeyGenerator()
RULE = "Bench base rate"  # made by bench/api_earn.py


_rule: dict[str, int] = {}


def _rule_id(cursor) -> int:
    """The bench rule's id, read once per process (the API keeps its rules per process too)."""
    if RULE not in _rule:
        cursor.execute("SELECT id FROM campaigns_earningrule WHERE name = %s", [RULE])
        _rule[RULE] = cursor.fetchone()[0]
    return _rule[RULE]


@csrf_exempt
def earn(request):
    if request.method != "POST":
        return JsonResponse({"code": "method_not_allowed"}, status=405)
    key = request.headers.get("Authorization", "").removeprefix("Api-Key ").strip()
    data = json.loads(request.body)
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.hashed_key, c.name FROM loyalty_site_channelapikey k "
            "JOIN loyalty_site_channel c ON c.id = k.channel_id "
            "WHERE k.prefix = %s AND NOT k.revoked AND c.active",
            [key.partition(".")[0]],
        )
        row = cursor.fetchone()
        if row is None or not _keys.verify(key, row[0]):
            return JsonResponse({"code": "not_authenticated"}, status=401)
        channel = row[1]
        cursor.execute(
            "SELECT a.id, a.member_id FROM ledger_account a "
            "JOIN members_member m ON m.id = a.member_id WHERE m.public_id = %s "
            "FOR UPDATE OF a",
            [uuid.UUID(data["member"])],
        )
        account_id, member_id = cursor.fetchone()
        amount = Decimal(data["amount"])
        points = int(amount)
        cursor.execute(
            "INSERT INTO ledger_purchase (channel, store, external_id, amount, currency, "
            "occurred_at, created_at, status, member_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'recorded', %s) RETURNING id",
            [channel, data.get("store", ""), data["external_id"], amount,
             data.get("currency", "EUR"), now, now, member_id],
        )  # fmt: skip
        purchase_id = cursor.fetchone()[0]
        lines = data.get("lines", [])
        if lines:
            cursor.execute(
                "INSERT INTO ledger_purchaseline (purchase_id, sku, category, quantity, amount) "
                "VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(lines)),
                [
                    value
                    for line in lines
                    for value in (purchase_id, line["sku"], line.get("category", ""),
                                  line.get("quantity", 1), Decimal(line["amount"]))
                ],
            )  # fmt: skip
        cursor.execute(
            "UPDATE ledger_account SET balance = balance + %s, updated_at = %s WHERE id = %s "
            "RETURNING balance",
            [points, now, account_id],
        )
        balance = cursor.fetchone()[0]
        rule_id = _rule_id(cursor)
        explanation = [{"rule": RULE, "rule_id": rule_id, "points": points}]
        cursor.execute(
            "INSERT INTO ledger_entry (kind, amount, balance_after, channel, reference, reason, "
            "reason_code, reason_params, explanation, created_at, account_id, purchase_id) "
            "VALUES ('earn', %s, %s, %s, %s, '', 'purchase', %s, %s, %s, %s, %s) RETURNING id",
            [points, balance, channel, data["external_id"],
             json.dumps({"id": data["external_id"]}), json.dumps(explanation), now,
             account_id, purchase_id],
        )  # fmt: skip
        entry_id = cursor.fetchone()[0]
        cursor.execute(
            "INSERT INTO ledger_lot (points, remaining, earned_at, account_id, entry_id) "
            "VALUES (%s, %s, %s, %s, %s)",
            [points, points, now, account_id, entry_id],
        )
        cursor.execute(
            "INSERT INTO campaigns_earningaward (rule_id, member_id, purchase_id, points, "
            "occurred_at) VALUES (%s, %s, %s, %s, %s)",
            [rule_id, member_id, purchase_id, points, now],
        )
        cursor.execute(
            "INSERT INTO campaigns_purchasepoints (purchase_id, points, points_reversed) "
            "VALUES (%s, %s, 0)",
            [purchase_id, points],
        )
    return JsonResponse(
        {"id": purchase_id, "points_earned": points, "rules": explanation, "balance": balance},
        status=201,
    )


def noop(request):
    return JsonResponse({"ok": True})


urlpatterns = [
    path("bench/earn/", earn, name="bench-earn"),
    path("bench/noop/", noop, name="bench-noop"),
]
