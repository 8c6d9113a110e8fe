"""The existing system reasons become codes with parameters (see ``_reason_codes``).

Entries are append-only (0002): the trigger is lifted for this one rewrite, inside the
migration's transaction on PostgreSQL, and recreated on SQLite (0009's rebuild dropped it).
Only ``reason``, ``reason_code`` and ``reason_params`` change; amounts and balances are not
touched. Backwards, the codes are rendered into English text again.
"""

from django.db import migrations

from ledger.migrations import _append_only
from ledger.migrations._reason_codes import reason_code_for

# Deferred foreign-key checks still queued in this transaction would make ALTER TABLE refuse.
PG_LIFT = (
    "SET CONSTRAINTS ALL IMMEDIATE; "
    "ALTER TABLE ledger_entry DISABLE TRIGGER ledger_entry_append_only;"
)
PG_RESTORE = "ALTER TABLE ledger_entry ENABLE TRIGGER ledger_entry_append_only;"


def _rewrite(schema_editor, rows, model, fields):
    vendor = schema_editor.connection.vendor
    if model._meta.model_name == "entry":
        if vendor == "postgresql":
            schema_editor.execute(PG_LIFT)
        else:
            for statement in _append_only.SQLITE_BACKWARD:
                schema_editor.execute(statement)
    model.objects.bulk_update(rows, fields, batch_size=1000)
    if model._meta.model_name == "entry":
        if vendor == "postgresql":
            schema_editor.execute(PG_RESTORE)
        else:
            for statement in _append_only.SQLITE_FORWARD:
                schema_editor.execute(statement)


def to_codes(apps, schema_editor):
    for name, kind in (("Entry", None), ("PendingEarn", "earn")):
        model = apps.get_model("ledger", name)
        changed = []
        rows = model.objects.filter(reason_code="").exclude(reason="")
        for row in rows.only("pk", "reason", "reference", *(("kind",) if kind is None else ())):
            found = reason_code_for(
                kind=kind or row.kind, reason=row.reason, reference=row.reference
            )
            if found is not None:
                row.reason_code, row.reason_params = found
                row.reason = ""
                changed.append(row)
        if changed or model._meta.model_name == "entry":
            _rewrite(schema_editor, changed, model, ["reason", "reason_code", "reason_params"])


def to_text(apps, schema_editor):
    from ledger.reasons import REASONS

    for name in ("Entry", "PendingEarn"):
        model = apps.get_model("ledger", name)
        changed = []
        for row in model.objects.exclude(reason_code="").only(
            "pk", "reason", "reason_code", "reason_params"
        ):
            template = REASONS.get(row.reason_code, (row.reason_code,))[0]
            text = template % row.reason_params if row.reason_code != "points_expired" else "expiry"
            row.reason = f"{text} ({row.reason})" if row.reason else text
            row.reason_code, row.reason_params = "", {}
            changed.append(row)
        if changed:
            _rewrite(schema_editor, changed, model, ["reason", "reason_code", "reason_params"])


class Migration(migrations.Migration):
    dependencies = [("ledger", "0009_entry_reason_code")]

    operations = [migrations.RunPython(to_codes, to_text, elidable=False)]
