"""The back office's exports (/exports/): each a django-import-export Resource run as a job.

A Resource names the columns and turns a row into cells (``export_resource``); it does not
write the file. ``Resource.export`` would build a tablib Dataset of every row in memory, and
tablib's XLSX builds the whole workbook in memory too, so the job writes the file itself: CSV
row by row, XLSX through openpyxl's write-only workbook, iterating the queryset in chunks of
2,000. A million rows use bounded memory.

Every text cell is formula-escaped: a value starting with = + - @ tab or CR gets a leading
apostrophe, so a spreadsheet shows it as text instead of running it. (import-export's own
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT only drops a leading "=" and turns every cell into text,
so it is not used here.)

An export of personal data (members, the shipping list) is itself recorded in the staff audit
log (members.AuditEntry) with who, the filters and the row count, never the values.
"""

import csv
import datetime as dt
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from campaigns.models import CampaignMessage, CampaignResult
from ledger.models import Entry
from members.background import JobRefused, job_file_write, job_kind
from members.models import Member
from members.services import audit_record
from rewards.models import Redemption

CHUNK_SIZE = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMATS = {"csv": "CSV", "xlsx": "XLSX (Excel)"}


def cell_escape(value):
    """A cell safe for a spreadsheet: text that a spreadsheet would run gets an apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _cell(value):
    """Native types stay native (numbers are numbers in XLSX); times are the programme's local
    time without a zone (a spreadsheet has none); anything else becomes its text."""
    if isinstance(value, dt.datetime) and timezone.is_aware(value):
        return timezone.localtime(value).replace(tzinfo=None, microsecond=0)
    if value is None or isinstance(value, (bool, int, float, Decimal, dt.date)):
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    return cell_escape(str(value))


def _csv_cell(value):
    value = _cell(value)
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return value


def _field(attribute: str, label, **kwargs) -> fields.Field:
    return fields.Field(attribute=attribute, column_name=label, readonly=True, **kwargs)


class _LabelsMixin:
    """Column names are translated labels, read when a header is written (the user's language).

    A cell is the field's Python value (or its ``dehydrate_`` method's), not the widget's text:
    the writers below keep numbers and times native for XLSX and format them for CSV.
    """

    def get_export_headers(self, selected_fields=None):
        return [str(field.column_name) for field in self.get_export_fields(selected_fields)]

    def export_field(self, field, instance, **kwargs):
        method = getattr(self, f"dehydrate_{self.get_field_name(field)}", None)
        if method is not None:
            return method(instance)
        return field.get_value(instance)


class MemberExportResource(_LabelsMixin, resources.Resource):
    id = _field("id", _("id"))
    public_id = _field("public_id", _("public id"))
    external_id = _field("external_id", _("external customer number"))
    first_name = _field("first_name", _("first name"))
    last_name = _field("last_name", _("last name"))
    email = _field("email", _("e-mail"))
    phone = _field("phone", _("phone"))
    birth_date = _field("birth_date", _("birth date"))
    locale = _field("locale", _("language"))
    status = _field("status", _("status"))
    tier = _field("tier__name", _("tier"))
    balance = fields.Field(column_name=_("balance"), readonly=True)
    enrolled_at = _field("enrolled_at", _("enrolled at"))
    enrolled_channel = _field("enrolled_channel", _("enrolled through"))

    def dehydrate_balance(self, member):
        account = getattr(member, "account", None)
        return account.balance if account is not None else 0


class EntryExportResource(_LabelsMixin, resources.Resource):
    id = _field("id", _("entry"))
    created_at = _field("created_at", _("created at"))
    member = _field("account__member__public_id", _("member"))
    kind = _field("kind", _("kind"))
    amount = _field("amount", _("points"))
    balance_after = _field("balance_after", _("balance after"))
    channel = _field("channel", _("channel"))
    reference = _field("reference", _("reference"))
    reason = _field("reason_text", _("reason"))
    actor = _field("actor__username", _("staff user"))
    refers_to = _field("refers_to_id", _("refers to"))
    purchase = _field("purchase_id", _("purchase"))


class RedemptionExportResource(_LabelsMixin, resources.Resource):
    id = _field("id", _("redemption"))
    created_at = _field("created_at", _("created at"))
    member = _field("member__public_id", _("member"))
    reward = _field("reward__name", _("reward"))
    points = _field("points", _("points"))
    status = _field("status", _("status"))
    channel = _field("channel", _("channel"))
    reference = _field("reference", _("reference"))
    discount = _field("discount_amount", _("discount"))
    currency = _field("currency", _("currency"))
    confirmed_at = _field("confirmed_at", _("confirmed at"))


class ShippingExportResource(_LabelsMixin, resources.Resource):
    """The admin's shipping list (rewards.admin, "Export as a shipping list"), as a Resource."""

    id = _field("id", _("redemption"))
    redeemed_at = fields.Field(column_name=_("redeemed at"), readonly=True)
    member = _field("member__public_id", _("member"))
    name = fields.Field(column_name=_("name"), readonly=True)
    email = _field("member__email", _("e-mail"))
    phone = _field("member__phone", _("phone"))
    reward = _field("reward__name", _("reward"))
    shipping_address = _field("shipping_address", _("shipping address"))
    fulfilment = _field("fulfilment_status", _("fulfilment"))
    tracking_code = _field("tracking_code", _("tracking code"))

    def dehydrate_redeemed_at(self, redemption):
        return redemption.confirmed_at or redemption.created_at

    def dehydrate_name(self, redemption):
        return f"{redemption.member.first_name} {redemption.member.last_name}".strip()


class CampaignMessageExportResource(_LabelsMixin, resources.Resource):
    id = _field("id", _("message"))
    campaign = _field("campaign__name", _("campaign"))
    member = _field("member__public_id", _("member"))
    channel = _field("channel", _("channel"))
    status = _field("status", _("status"))
    suppression = _field("suppression", _("suppressed because"))
    attempts = _field("attempts", _("attempts"))
    language = _field("language", _("language"))
    planned_at = _field("planned_at", _("planned at"))
    sent_at = _field("sent_at", _("sent at"))


class CampaignResultExportResource(_LabelsMixin, resources.Resource):
    campaign = _field("campaign__name", _("campaign"))
    window = _field("window", _("window"))
    metric = _field("metric", _("metric"))
    starts_at = _field("starts_at", _("window starts"))
    ends_at = _field("ends_at", _("window ends"))
    treated_n = _field("treated_n", _("treated members"))
    treated_sum = _field("treated_sum", _("treated sum"))
    treated_mean = fields.Field(column_name=_("treated mean"), readonly=True)
    control_n = _field("control_n", _("control members"))
    control_sum = _field("control_sum", _("control sum"))
    control_mean = fields.Field(column_name=_("control mean"), readonly=True)
    computed_at = _field("computed_at", _("computed at"))

    def dehydrate_treated_mean(self, result):
        return round(result.treated_sum / result.treated_n, 4) if result.treated_n else None

    def dehydrate_control_mean(self, result):
        return round(result.control_sum / result.control_n, 4) if result.control_n else None


def _range(rows, params: dict, field: str):
    zone = timezone.get_current_timezone()
    if params.get("date_from"):
        day = dt.date.fromisoformat(params["date_from"])
        rows = rows.filter(**{f"{field}__gte": dt.datetime.combine(day, dt.time.min, zone)})
    if params.get("date_to"):
        day = dt.date.fromisoformat(params["date_to"]) + dt.timedelta(days=1)
        rows = rows.filter(**{f"{field}__lt": dt.datetime.combine(day, dt.time.min, zone)})
    return rows


def _members(params):
    rows = Member.objects.select_related("tier", "account")
    return _range(rows, params, "enrolled_at").order_by("pk")


def _entries(params):
    rows = Entry.objects.select_related("account__member", "actor")
    return _range(rows, params, "created_at").order_by("pk")


def _redemptions(params):
    rows = Redemption.objects.select_related("member", "reward")
    return _range(rows, params, "created_at").order_by("pk")


def _shipping(params):
    rows = Redemption.objects.select_related("member", "reward").exclude(fulfilment_status="")
    if params.get("status"):
        rows = rows.filter(fulfilment_status=params["status"])
    return _range(rows, params, "created_at").order_by("created_at", "pk")


def _messages(params):
    rows = CampaignMessage.objects.select_related("campaign", "member").filter(
        campaign_id=params["campaign"]
    )
    return _range(rows, params, "planned_at").order_by("pk")


def _results(params):
    rows = CampaignResult.objects.select_related("campaign").filter(campaign_id=params["campaign"])
    return _range(rows, params, "starts_at").order_by("window", "metric", "starts_at", "pk")


@dataclass(frozen=True)
class ExportSpec:
    key: str
    label: object
    # All are needed. Where one permission would let in a role the export is not for, a second
    # narrows it (e.g. Customer service may view campaign messages on a member's page, but only
    # Marketing, who may view campaigns, exports a campaign's messages).
    permissions: tuple[str, ...]
    resource: type[resources.Resource]
    rows: Callable
    filters: tuple[str, ...] = ("dates",)
    # members.AuditEntry action recorded when the file is written: set for personal data.
    audit_action: str = ""

    def allowed(self, user) -> bool:
        return user.has_perms(self.permissions)


EXPORTS: dict[str, ExportSpec] = {
    spec.key: spec
    for spec in (
        ExportSpec(
            "members",
            _("Members (personal data)"),
            ("members.view_member", "members.export_member"),
            MemberExportResource,
            _members,
            audit_action="members_export",
        ),
        ExportSpec(
            "entries", _("Ledger entries"), ("ledger.view_entry",), EntryExportResource, _entries
        ),
        ExportSpec(
            "redemptions",
            _("Redemptions"),
            ("rewards.view_redemption", "rewards.view_reward"),
            RedemptionExportResource,
            _redemptions,
        ),
        ExportSpec(
            "shipping",
            _("Shipping list (personal data)"),
            ("rewards.view_fulfilment",),
            ShippingExportResource,
            _shipping,
            filters=("dates", "status"),
            audit_action="shipping_export",
        ),
        ExportSpec(
            "messages",
            _("Campaign messages"),
            ("campaigns.view_campaignmessage", "campaigns.view_campaign"),
            CampaignMessageExportResource,
            _messages,
            filters=("dates", "campaign"),
        ),
        ExportSpec(
            "results",
            _("Campaign results"),
            ("campaigns.view_campaignresult", "campaigns.view_campaign"),
            CampaignResultExportResource,
            _results,
            filters=("dates", "campaign"),
        ),
    )
}


def exports_for(user) -> list[ExportSpec]:
    return [spec for spec in EXPORTS.values() if spec.allowed(user)]


def job_kind_name(key: str) -> str:
    return f"exports.{key}"


def _write_csv(out, resource, rows, progress, total) -> int:
    writer = csv.writer(out)
    out.write("\ufeff")  # Excel needs the BOM to read UTF-8.
    writer.writerow(resource.get_export_headers())
    count = 0
    for count, row in enumerate(rows.iterator(chunk_size=CHUNK_SIZE), start=1):
        writer.writerow([_csv_cell(v) for v in resource.export_resource(row)])
        progress(count, total)
    return count


def _xlsx_cell(value):
    value = _cell(value)
    if isinstance(value, str):
        value = ILLEGAL_CHARACTERS_RE.sub("\N{REPLACEMENT CHARACTER}", value)
    return value


def _write_xlsx(out, resource, rows, progress, total) -> int:
    # Write-only: each appended row goes to a temporary file, not into a tree in memory.
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(resource.get_export_headers())
    count = 0
    for count, row in enumerate(rows.iterator(chunk_size=CHUNK_SIZE), start=1):
        sheet.append([_xlsx_cell(v) for v in resource.export_resource(row)])
        progress(count, total)
    workbook.save(out)
    return count


def export_run(job, progress) -> dict:
    """The job behind every export: check, count, write the file, audit personal data."""
    spec = EXPORTS[job.kind.removeprefix("exports.")]
    user, params = job.requested_by, job.params
    if not spec.allowed(user):
        raise JobRefused(_("You may not run this export."))
    file_format = params.get("format", "csv")
    with translation.override(params.get("language") or settings.LANGUAGE_CODE):
        rows = spec.rows(params)
        total = rows.count()
        progress(0, total, force=True)
        resource = spec.resource()
        name = f"{spec.key}-{timezone.localdate():%Y-%m-%d}.{file_format}"
        if file_format == "xlsx":
            with job_file_write(job, name, binary=True) as out:
                count = _write_xlsx(out, resource, rows, progress, total)
        else:
            with job_file_write(job, name) as out:
                count = _write_csv(out, resource, rows, progress, total)
    progress(count, max(total, count), force=True)
    if spec.audit_action:
        audit_record(
            actor=user,
            action=spec.audit_action,
            details={
                "filters": {k: v for k, v in params.items() if k != "language"},
                "rows": count,
            },
        )
    return {"rows": count, "format": file_format}


for _spec in EXPORTS.values():
    job_kind(
        job_kind_name(_spec.key),
        label=_spec.label,
        permission=_spec.permissions[0],
        result_template="exports/job_result.html",
        reads_replica=True,
    )(export_run)
