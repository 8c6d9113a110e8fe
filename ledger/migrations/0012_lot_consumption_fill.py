"""Lot consumptions are append-only, and existing debits get theirs (see ``ledger.models.finance``).

The fill replays each account's entries in the order they were posted (id order), with the
rules the services applied then: an earn's lot first pays the debt, an expiry entry takes its
own lot (``reference = "lot:<id>"``), every other debit takes the oldest open lots first
(earned_at, id) among the lots posted before it. Replayed on a reconciled ledger it ends with
every lot's ``remaining`` as stored; ``ledger.finance.checks.consumption_mismatches`` lists any
lot where it does not (a ledger that did not reconcile before).
"""

from django.db import migrations

PG_FORWARD = """
CREATE OR REPLACE FUNCTION ledger_consumption_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION USING
        MESSAGE = 'lot consumptions are append-only: ' || TG_OP || ' refused on ledger_lotconsumption',
        ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER ledger_consumption_append_only
    BEFORE UPDATE OR DELETE ON ledger_lotconsumption
    FOR EACH ROW EXECUTE FUNCTION ledger_consumption_refuse_change();
"""
PG_BACKWARD = """
DROP TRIGGER IF EXISTS ledger_consumption_append_only ON ledger_lotconsumption;
DROP FUNCTION IF EXISTS ledger_consumption_refuse_change();
"""
SQLITE_FORWARD = [
    """
    CREATE TRIGGER ledger_consumption_no_update BEFORE UPDATE ON ledger_lotconsumption
    BEGIN SELECT RAISE(ABORT,
        'lot consumptions are append-only: UPDATE refused on ledger_lotconsumption');
    END;
    """,
    """
    CREATE TRIGGER ledger_consumption_no_delete BEFORE DELETE ON ledger_lotconsumption
    BEGIN SELECT RAISE(ABORT,
        'lot consumptions are append-only: DELETE refused on ledger_lotconsumption');
    END;
    """,
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS ledger_consumption_no_update;",
    "DROP TRIGGER IF EXISTS ledger_consumption_no_delete;",
]
CHUNK = 500


def replay(entries, lots_by_entry):
    """The consumptions of one account: ``entries`` as (id, kind, amount, reference, at) in id
    order, ``lots_by_entry`` {entry id: (lot id, points, earned_at)}. Returns
    [(entry id, lot id, points, at)] and {lot id: remaining} at the end."""
    remaining, open_lots, out, balance = {}, [], [], 0
    for entry_id, kind, amount, reference, at in entries:
        if amount > 0:
            lot = lots_by_entry.get(entry_id)
            if lot is not None:
                lot_id, points, earned_at = lot
                debt = min(max(0, -balance), points)
                remaining[lot_id] = points - debt
                if debt:
                    out.append((entry_id, lot_id, debt, at))
                open_lots.append((earned_at, lot_id))
                open_lots.sort()
        else:
            need = -amount
            if kind == "expire" and reference.startswith("lot:"):
                order = [int(reference[4:])]
            else:
                order = [lot_id for _earned, lot_id in open_lots]
            for lot_id in order:
                take = min(remaining.get(lot_id, 0), need)
                if take > 0:
                    remaining[lot_id] -= take
                    out.append((entry_id, lot_id, take, at))
                    need -= take
                if need == 0:
                    break
            open_lots = [item for item in open_lots if remaining[item[1]] > 0]
        balance += amount
    return out, remaining


def fill(apps, schema_editor):
    Account = apps.get_model("ledger", "Account")
    Entry = apps.get_model("ledger", "Entry")
    Lot = apps.get_model("ledger", "Lot")
    LotConsumption = apps.get_model("ledger", "LotConsumption")
    last = 0
    while True:
        ids = list(
            Account.objects.filter(pk__gt=last).order_by("pk").values_list("pk", flat=True)[:CHUNK]
        )
        if not ids:
            return
        entries = {}
        for row in (
            Entry.objects.filter(account_id__in=ids)
            .order_by("account_id", "id")
            .values_list("account_id", "id", "kind", "amount", "reference", "created_at")
            .iterator(chunk_size=5000)
        ):
            entries.setdefault(row[0], []).append(row[1:])
        lots = {}
        for account_id, lot_id, entry_id, points, earned_at in Lot.objects.filter(
            account_id__in=ids
        ).values_list("account_id", "id", "entry_id", "points", "earned_at"):
            lots.setdefault(account_id, {})[entry_id] = (lot_id, points, earned_at)
        rows = []
        for account_id in ids:
            consumed, _remaining = replay(entries.get(account_id, []), lots.get(account_id, {}))
            rows.extend(
                LotConsumption(entry_id=e, lot_id=lot, points=p, at=at)
                for e, lot, p, at in consumed
            )
        LotConsumption.objects.bulk_create(rows, batch_size=2000)
        last = ids[-1]


def triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_FORWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)
    else:
        raise RuntimeError(f"no append-only trigger for database vendor {vendor!r}")


def triggers_drop(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_BACKWARD)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0011_lot_consumption")]

    operations = [
        # Fill first: the trigger does not stop inserts, but backwards the rows must go first.
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(triggers, triggers_drop, elidable=False),
    ]
