"""The reference's views: what Django + DRF cost with an earn's writes in hand-written SQL.

`Earn` makes the writes the product's `POST /api/v1/purchases/` makes with the bench's one-rule
programme (1 point per unit of money), into the same tables, in one transaction: claim the
Idempotency-Key (INSERT ... ON CONFLICT DO NOTHING), lock the member's account, insert the
purchase, its lines, the rule's award and the purchase's points record, update the balance,
insert the ledger entry and its lot, store the answer on the idempotency record. No rules
engine, no abuse checks, no tiers, no first-purchase or repeat check: the least an earn can do.

`Balance` reads what `GET /api/v1/members/{id}/` answers with (the member, its account, tier
and cards) in one statement. `Noop` answers without the database: the floor of the stack.

The channel key is checked against its stored hash once per process and
LOYALTY_CONFIG_CACHE_SECONDS, as the product does (loyalty_site/api/authentication.py).
"""

import hashlib
import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_api_key.crypto import KeyGenerator

_keys = KeyGenerator()
_checked: dict[str, tuple[float, str]] = {}
RULE = "Bench base rate"  # made by bench/api_earn.py
_rule: dict[str, int] = {}


def _channel(request) -> str | None:
    """The key's channel name, or None when the key is unknown, revoked or wrong."""
    key = request.headers.get("Authorization", "").removeprefix("Api-Key ").strip()
    name = hashlib.sha256(key.encode()).hexdigest()
    hit = _checked.get(name)
    if hit and time.monotonic() - hit[0] < settings.KEY_CACHE_SECONDS:
        return hit[1]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.hashed_key, c.name FROM loyalty_site_channelapikey k "
            "JOIN loyalty_site_channel c ON c.id = k.channel_id "
            "WHERE k.prefix = %s AND NOT k.revoked AND c.active",
            [key.partition(".")[0]],
        )
        row = cursor.fetchone()
    if row is None or not _keys.verify(key, row[0]):
        return None
    _checked[name] = (time.monotonic(), row[1])
    return row[1]


def _rule_id(cursor) -> int:
    if RULE not in _rule:
        cursor.execute("SELECT id FROM campaigns_earningrule WHERE name = %s", [RULE])
        _rule[RULE] = cursor.fetchone()[0]
    return _rule[RULE]


class Earn(APIView):
    def post(self, request):
        channel = _channel(request)
        if channel is None:
            return Response({"code": "not_authenticated"}, status=401)
        data = request.data
        key = request.headers.get("Idempotency-Key", "")
        fingerprint = hashlib.sha256(request.body).hexdigest()
        now = timezone.now()
        amount = Decimal(data["amount"])
        points = int(amount)
        with transaction.atomic(), connection.cursor() as cursor:
            if key:
                cursor.execute(
                    "INSERT INTO ledger_idempotencyrecord (channel, key, fingerprint, created_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING id",
                    [channel, key, fingerprint, now],
                )
                if cursor.fetchone() is None:
                    return Response({"code": "idempotency_conflict"}, status=409)
            cursor.execute(
                "SELECT a.id, a.member_id FROM ledger_account a "
                "JOIN members_member m ON m.id = a.member_id WHERE m.public_id = %s "
                "FOR UPDATE OF a",
                [uuid.UUID(data["member"])],
            )
            account_id, member_id = cursor.fetchone()
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
                    "INSERT INTO ledger_purchaseline (purchase_id, sku, category, quantity, "
                    "amount) VALUES " + ", ".join(["(%s, %s, %s, %s, %s)"] * len(lines)),
                    [
                        value
                        for line in lines
                        for value in (purchase_id, line["sku"], line.get("category", ""),
                                      line.get("quantity", 1), Decimal(line["amount"]))
                    ],
                )  # fmt: skip
            rule_id = _rule_id(cursor)
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
            cursor.execute(
                "UPDATE ledger_account SET balance = balance + %s, updated_at = %s "
                "WHERE id = %s RETURNING balance",
                [points, now, account_id],
            )
            balance = cursor.fetchone()[0]
            explanation = [{"rule": RULE, "rule_id": rule_id, "points": points}]
            cursor.execute(
                "INSERT INTO ledger_entry (kind, amount, balance_after, channel, reference, "
                "reason, reason_code, reason_params, explanation, created_at, account_id, "
                "purchase_id) VALUES ('earn', %s, %s, %s, %s, '', 'purchase', %s, %s, %s, %s, "
                "%s) RETURNING id",
                [points, balance, channel, data["external_id"],
                 json.dumps({"id": data["external_id"]}), json.dumps(explanation), now,
                 account_id, purchase_id],
            )  # fmt: skip
            entry_id = cursor.fetchone()[0]
            cursor.execute(
                "INSERT INTO ledger_lot (points, remaining, earned_at, expires_at, account_id, "
                "entry_id) VALUES (%s, %s, %s, %s, %s, %s)",
                [points, points, now, now + timedelta(days=730), account_id, entry_id],
            )
            body = {
                "id": purchase_id,
                "member": data["member"],
                "status": "recorded",
                "points_earned": points,
                "pending_points": 0,
                "rules": explanation,
                "balance": balance,
            }
            if key:
                cursor.execute(
                    "UPDATE ledger_idempotencyrecord SET response_status = 201, "
                    "response_body = %s WHERE channel = %s AND key = %s",
                    [json.dumps(body), channel, key],
                )
        return Response(body, status=201)


class Balance(APIView):
    def get(self, request, public_id):
        if _channel(request) is None:
            return Response({"code": "not_authenticated"}, status=401)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT m.public_id, m.email, m.first_name, m.last_name, m.external_id, "
                "m.status, a.balance, a.held, a.pending, t.name, "
                "(SELECT coalesce(json_agg(json_build_object('number', c.number, "
                "'status', c.status) ORDER BY c.issued_at DESC, c.id DESC), '[]') "
                "FROM members_card c WHERE c.member_id = m.id) "
                "FROM members_member m JOIN ledger_account a ON a.member_id = m.id "
                "LEFT JOIN members_tier t ON t.id = m.tier_id "
                "WHERE m.public_id = %s AND m.status <> 'erased'",
                [public_id],
            )
            row = cursor.fetchone()
        if row is None:
            return Response({"code": "member_not_found"}, status=404)
        cards = json.loads(row[10]) if isinstance(row[10], str) else row[10]
        return Response(
            {
                "public_id": row[0],
                "email": row[1],
                "first_name": row[2],
                "last_name": row[3],
                "external_id": row[4],
                "status": row[5],
                "balance": row[6],
                "available": row[6] - row[7],
                "pending_points": row[8],
                "tier": row[9],
                "cards": cards,
                "card_number": cards[0]["number"] if cards else None,
            }
        )


class Noop(APIView):
    def get(self, request):
        return Response({"ok": True})
