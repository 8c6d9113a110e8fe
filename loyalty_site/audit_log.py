"""The audit log page's read: staff changes from both logs, merged into one time-ordered list.

Two sources, each with its own table:

- ``members.AuditEntry``: what staff did to a member (adjustment approvals of the member page,
  card actions, consents, profile edits, exports, erasures), with the reason typed; its details
  hold field names and ids, never personal values.
- auditlog's ``LogEntry``: edits of the configuration (rules, tiers, rewards, segments,
  campaigns, channels, ...), with before and after of each changed field. Only configuration
  models are registered (see each app's ``apps.py``); members, cards and consents never are, so
  an erasure leaves nothing personal behind here either.

A page is read by keyset ("older than this row"), never by counting or by offset: each source
gives at most one page plus one row older than the cursor, the two are merged and cut. The order
is (time, source, id) descending, the same in both the page and the CSV export.
"""

import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from members.models import AuditEntry, Card, Member
from members.services.audit import AUDIT_ACTIONS

PAGE_SIZE = 25

# Source ranks: the tie-breaker between rows of the same instant (higher first).
CONFIG, MEMBER = 0, 1

# Member actions: the one catalogue of audit action codes and labels.
MEMBER_ACTIONS = AUDIT_ACTIONS

CONFIG_ACTIONS = {
    LogEntry.Action.CREATE: _("Created"),
    LogEntry.Action.UPDATE: _("Changed"),
    LogEntry.Action.DELETE: _("Deleted"),
    LogEntry.Action.ACCESS: _("Viewed"),
}


@dataclass
class AuditFilters:
    actor_id: int | None = None
    member_id: int | None = None
    # "member:<action>" or "config:<app_label>.<model>"
    kind: str = ""
    date_from: object = None  # date, in the programme's zone
    date_to: object = None


@dataclass
class Change:
    field: str
    before: str
    after: str


@dataclass
class AuditRow:
    source: int
    id: int
    at: datetime
    actor: object
    action: str
    member_id: int | None = None
    subject: str = ""
    changes: list[Change] = field(default_factory=list)
    reason: str = ""
    details: dict = field(default_factory=dict)
    # A creation or deletion lists every field: the page folds it away.
    folded: bool = False

    @property
    def details_text(self) -> str:
        """The details as "key: value" (ids, counts, field names, filters), sorted."""
        parts = []
        for key, value in sorted(self.details.items()):
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items() if v not in (None, ""))
            elif isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            parts.append(f"{key}: {value}")
        return "; ".join(parts)

    @property
    def cursor(self) -> str:
        return f"{self.at.isoformat()}~{self.source}~{self.id}"

    @property
    def key(self) -> tuple:
        return (self.at, self.source, self.id)


def kind_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The kind filter's options: member actions, then each logged configuration model."""
    config = sorted(
        (
            (f"config:{model._meta.label_lower}", str(model._meta.verbose_name_plural).capitalize())
            for model in auditlog.get_models()
        ),
        key=lambda choice: choice[1],
    )
    return [
        (str(_("Member actions")), [(f"member:{a}", label) for a, label in MEMBER_ACTIONS.items()]),
        (str(_("Configuration")), config),
    ]


def member_find(text: str) -> Member | None:
    """The member behind `text`: an id, a public id, an external customer number or a card."""
    text = (text or "").strip()
    if not text:
        return None
    if text.isdigit():
        found = Member.objects.filter(pk=int(text)).first()
        if found is not None:
            return found
    try:
        return Member.objects.filter(public_id=uuid.UUID(text)).first()
    except ValueError:
        pass
    found = Member.objects.filter(external_id=text).order_by("pk").first()
    if found is not None:
        return found
    card = Card.objects.filter(number=text.replace(" ", "")).select_related("member").first()
    return card.member if card is not None else None


def cursor_parse(text: str) -> tuple | None:
    """(at, source, id) from a page's "older" link, or None when it is not one of ours."""
    try:
        at_text, source, row_id = (text or "").split("~")
        at = parse_datetime(at_text)
        if at is None or int(source) not in (CONFIG, MEMBER):
            return None
        return at, int(source), int(row_id)
    except ValueError:
        return None


def _older_than(rank: int, cursor: tuple | None, at_field: str) -> Q:
    if cursor is None:
        return Q()
    at, source, row_id = cursor
    if rank == source:
        return Q(**{f"{at_field}__lt": at}) | Q(**{at_field: at, "pk__lt": row_id})
    if rank < source:
        return Q(**{f"{at_field}__lte": at})
    return Q(**{f"{at_field}__lt": at})


def _day_bounds(filters: AuditFilters) -> tuple[datetime | None, datetime | None]:
    zone = timezone.get_current_timezone()
    start = end = None
    if filters.date_from:
        start = datetime.combine(filters.date_from, time.min, tzinfo=zone)
    if filters.date_to:
        end = datetime.combine(filters.date_to + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


def _member_entries(filters: AuditFilters, cursor):
    if filters.kind.startswith("config:"):
        return None
    rows = AuditEntry.objects.select_related("actor").filter(_older_than(MEMBER, cursor, "at"))
    if filters.kind.startswith("member:"):
        rows = rows.filter(action=filters.kind.removeprefix("member:"))
    if filters.actor_id:
        rows = rows.filter(actor_id=filters.actor_id)
    if filters.member_id:
        rows = rows.filter(member_id=filters.member_id)
    start, end = _day_bounds(filters)
    if start:
        rows = rows.filter(at__gte=start)
    if end:
        rows = rows.filter(at__lt=end)
    return rows.order_by("-at", "-pk")


def _config_entries(filters: AuditFilters, cursor):
    # A configuration change concerns no member.
    if filters.member_id or filters.kind.startswith("member:"):
        return None
    rows = LogEntry.objects.select_related("actor", "content_type").filter(
        _older_than(CONFIG, cursor, "timestamp")
    )
    if filters.kind.startswith("config:"):
        app_label, _dot, model = filters.kind.removeprefix("config:").partition(".")
        content_type = ContentType.objects.get_by_natural_key(app_label, model)
        rows = rows.filter(content_type=content_type)
    if filters.actor_id:
        rows = rows.filter(actor_id=filters.actor_id)
    start, end = _day_bounds(filters)
    if start:
        rows = rows.filter(timestamp__gte=start)
    if end:
        rows = rows.filter(timestamp__lt=end)
    return rows.order_by("-timestamp", "-pk")


def _member_row(entry: AuditEntry) -> AuditRow:
    return AuditRow(
        source=MEMBER,
        id=entry.pk,
        at=entry.at,
        actor=entry.actor,
        action=str(MEMBER_ACTIONS.get(entry.action, entry.action)),
        member_id=entry.member_id,
        reason=entry.reason,
        details=entry.details or {},
    )


def _display(model, name: str, value) -> tuple[str, str]:
    """The field's label and the value as staff read it (a choice's label, no lookups)."""
    try:
        model_field = model._meta.get_field(name) if model is not None else None
    except FieldDoesNotExist:
        model_field = None
    label = str(getattr(model_field, "verbose_name", name))
    if isinstance(value, dict):  # a many-to-many change: {"operation": ..., "objects": [...]}
        objects = ", ".join(str(o) for o in value.get("objects", []))
        sign = {"add": "+", "delete": "−", "clear": "∅"}.get(value.get("operation"), "")
        return label, f"{sign} {objects}".strip()
    text = "" if value is None or value == "None" else str(value)
    choices = dict(getattr(model_field, "flatchoices", None) or [])
    if choices:
        text = str(choices.get(text, text))
    return label, text


def _reverse_relation(model, name: str) -> bool:
    # auditlog lists another model's foreign keys to this one ("offers", "redemptions") on a
    # creation, always empty: not this model's configuration.
    try:
        model_field = model._meta.get_field(name) if model is not None else None
    except FieldDoesNotExist:
        return False
    return model_field is not None and model_field.auto_created and not model_field.concrete


def _config_row(entry: LogEntry) -> AuditRow:
    model = entry.content_type.model_class()
    changes = []
    for name, values in (entry.changes or {}).items():
        if _reverse_relation(model, name):
            continue
        if isinstance(values, dict):
            label, text = _display(model, name, values)
            changes.append(Change(label, "", text))
            continue
        before, after = (list(values) + [None, None])[:2]
        label, before_text = _display(model, name, before)
        _label, after_text = _display(model, name, after)
        changes.append(Change(label, before_text, after_text))
    model_name = model._meta.verbose_name if model is not None else entry.content_type.model
    return AuditRow(
        source=CONFIG,
        id=entry.pk,
        at=entry.timestamp,
        actor=entry.actor,
        action=f"{CONFIG_ACTIONS.get(entry.action, entry.action)}: {model_name}",
        subject=entry.object_repr,
        changes=changes,
        folded=entry.action in (LogEntry.Action.CREATE, LogEntry.Action.DELETE),
        reason=(entry.additional_data or {}).get("reason", "")
        if isinstance(entry.additional_data, dict)
        else "",
    )


def audit_page(filters: AuditFilters, cursor: tuple | None = None, size: int = PAGE_SIZE):
    """One page of the merged log, newest first, older than `cursor`: (rows, has_older)."""
    merged = []
    member_rows = _member_entries(filters, cursor)
    if member_rows is not None:
        merged += [_member_row(e) for e in member_rows[: size + 1]]
    config_rows = _config_entries(filters, cursor)
    if config_rows is not None:
        merged += [_config_row(e) for e in config_rows[: size + 1]]
    merged.sort(key=lambda row: row.key, reverse=True)
    return merged[:size], len(merged) > size


def audit_rows(filters: AuditFilters) -> Iterator[AuditRow]:
    """Every row of the filtered log, newest first, in bounded memory (for the CSV export)."""
    sources = []
    member_rows = _member_entries(filters, None)
    if member_rows is not None:
        sources.append(_member_row(e) for e in member_rows.iterator(chunk_size=2000))
    config_rows = _config_entries(filters, None)
    if config_rows is not None:
        sources.append(_config_row(e) for e in config_rows.iterator(chunk_size=2000))
    return heapq.merge(*sources, key=lambda row: row.key, reverse=True)
