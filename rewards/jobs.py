"""Background jobs of the catalogue pages: generating and importing voucher codes in bulk.

Registered at import (rewards/views.py imports this module). Each batch is its own transaction
through rewards.services, so the page's progress bar moves and a large pool never holds one
long transaction; a job run again after a crash adds new codes (generation) or skips the codes
already in (import), never duplicates.
"""

from datetime import datetime

import tablib
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from members.background import JobRefused, job_kind
from rewards import services
from rewards.models import Reward

BATCH = 1000
# Row errors listed when an import is refused; the rest are counted.
ERRORS_SHOWN = 10


def _reward(job) -> Reward:
    reward = Reward.objects.filter(pk=job.params["reward_id"]).first()
    if reward is None or not reward.gives_code:
        raise JobRefused(_("The reward is gone or gives no voucher codes."))
    return reward


@job_kind(
    "rewards.codes_generate",
    label=gettext_lazy("Generate voucher codes"),
    permission="rewards.add_vouchercode",
    result_template="rewards/codes_job_result.html",
)
def codes_generate(job, progress):
    reward = _reward(job)
    count = int(job.params["count"])
    expires_at = parse_datetime(job.params["expires_at"]) if job.params.get("expires_at") else None
    made = 0
    progress(0, count, force=True)
    while made < count:
        made += len(
            services.voucher_codes_generate(
                reward=reward, count=min(BATCH, count - made), expires_at=expires_at
            )
        )
        progress(made, count)
    return {"reward_id": reward.pk, "added": made, "skipped": 0}


def codes_file_rows(name: str, content: bytes) -> tuple[list[tuple[str, datetime | None]], list]:
    """The (code, expires at) rows of an uploaded CSV or XLSX, and its row errors."""
    try:
        if name.lower().endswith(".xlsx"):
            data = tablib.Dataset().load(content, format="xlsx")
        else:
            data = tablib.Dataset().load(content.decode("utf-8-sig"), format="csv")
    except Exception:  # noqa: BLE001 - any unreadable file is the same refusal to the user
        raise JobRefused(_("The file cannot be read as CSV or XLSX.")) from None
    headers = [str(h or "").strip().lower() for h in (data.headers or [])]
    if "code" not in headers:
        raise JobRefused(_("The file has no column named code."))
    at = headers.index("code"), headers.index("expires_at") if "expires_at" in headers else None
    rows, errors = [], []
    for number, row in enumerate(data, start=2):
        code = str(row[at[0]] or "").strip()
        raw = row[at[1]] if at[1] is not None else None
        if not code:
            errors.append(_("Row %(row)d: the code is empty.") % {"row": number})
            continue
        expires_at = None
        if isinstance(raw, datetime):
            expires_at = raw if timezone.is_aware(raw) else timezone.make_aware(raw)
        elif raw not in (None, ""):
            parsed = parse_datetime(str(raw).strip().replace(" ", "T", 1))
            if parsed is None:
                errors.append(
                    _("Row %(row)d: %(value)s is not a date and time (YYYY-MM-DD HH:MM).")
                    % {"row": number, "value": raw}
                )
                continue
            expires_at = parsed if timezone.is_aware(parsed) else timezone.make_aware(parsed)
        rows.append((code, expires_at))
    return rows, errors


@job_kind(
    "rewards.codes_import",
    label=gettext_lazy("Import voucher codes"),
    permission="rewards.add_vouchercode",
    result_template="rewards/codes_job_result.html",
)
def codes_import(job, progress):
    reward = _reward(job)
    path = job.params["path"]
    try:
        with default_storage.open(path, "rb") as upload:
            content = upload.read()
    finally:
        default_storage.delete(path)
    rows, errors = codes_file_rows(job.params["name"], content)
    if errors:
        shown = "; ".join(errors[:ERRORS_SHOWN])
        more = len(errors) - ERRORS_SHOWN
        if more > 0:
            shown += " " + _("(and %(count)d more)") % {"count": more}
        raise JobRefused(_("Nothing was imported. %(errors)s") % {"errors": shown})
    if not rows:
        raise JobRefused(_("The file holds no codes."))
    added = 0
    progress(0, len(rows), force=True)
    for start in range(0, len(rows), BATCH):
        added += services.voucher_codes_import(reward=reward, rows=rows[start : start + BATCH])
        progress(min(start + BATCH, len(rows)), len(rows))
    return {"reward_id": reward.pk, "added": added, "skipped": len(rows) - added}
