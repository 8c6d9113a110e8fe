"""The audit log page (/audit/) and its CSV export: staff changes from every app, filtered.

Administrators and Finance (auditors) may read it; it shows member ids, never their personal
data. Customer service sees a member's own trail on the member page instead.
"""

import csv

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.http import StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _t
from django.utils.translation import gettext_lazy as _

from loyalty_site import audit_log
from loyalty_site.exports import cell_escape
from members.services import audit_record

AUDIT_PERMISSIONS = ("members.view_auditentry", "auditlog.view_logentry")


class AuditFilterForm(forms.Form):
    actor = forms.ModelChoiceField(
        label=_("Staff user"),
        queryset=get_user_model().objects.filter(is_staff=True).order_by("username"),
        required=False,
        empty_label=_("anyone"),
    )
    member = forms.CharField(
        label=_("Member"),
        required=False,
        max_length=64,
        help_text=_("Id, public id, customer number or card number."),
    )
    kind = forms.ChoiceField(label=_("Kind"), required=False)
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kind"].choices = [("", _("every kind")), *audit_log.kind_choices()]

    def clean_member(self):
        text = self.cleaned_data["member"].strip()
        if not text:
            return None
        member = audit_log.member_find(text)
        if member is None:
            raise forms.ValidationError(_("No member has this id, customer number or card."))
        return member

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def filters(self) -> audit_log.AuditFilters:
        data = self.cleaned_data
        return audit_log.AuditFilters(
            actor_id=data["actor"].pk if data.get("actor") else None,
            member_id=data["member"].pk if data.get("member") else None,
            kind=data.get("kind") or "",
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
        )


def _member_url(member_id: int) -> str:
    return reverse("member-page", args=[member_id])


@login_required
@permission_required(AUDIT_PERMISSIONS, raise_exception=True)
def audit_page(request):
    """The merged audit log, newest first, 25 rows a page, "older" by keyset."""
    form = AuditFilterForm(request.GET or None)
    rows, has_older, valid = [], False, form.is_bound and form.is_valid()
    if valid or not form.is_bound:
        filters = form.filters() if valid else audit_log.AuditFilters()
        cursor = audit_log.cursor_parse(request.GET.get("before", ""))
        rows, has_older = audit_log.audit_page(filters, cursor)
        for row in rows:
            row.member_url = _member_url(row.member_id) if row.member_id else ""
    query = request.GET.copy()
    query.pop("before", None)
    return render(
        request,
        "audit/audit_log.html",
        {
            "form": form,
            "rows": rows,
            "older": f"{rows[-1].cursor}" if has_older and rows else "",
            "is_older_page": bool(request.GET.get("before")),
            "query": query.urlencode(),
        },
    )


class _Echo:
    def write(self, value):
        return value


@login_required
@permission_required(AUDIT_PERMISSIONS, raise_exception=True)
def audit_export(request):
    """The filtered log as CSV, streamed row by row (any size, bounded memory)."""
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return render(
            request,
            "audit/audit_log.html",
            {"form": form, "rows": [], "older": "", "query": ""},
            status=400,
        )
    filters = form.filters() if form.is_bound else audit_log.AuditFilters()
    audit_record(
        actor=request.user,
        action="audit_export",
        member=None,
        details={"filters": _filters_for_audit(filters)},
    )
    writer = csv.writer(_Echo())
    header = [
        _t("when"),
        _t("staff user"),
        _t("what"),
        _t("member"),
        _t("object"),
        _t("changes"),
        _t("reason"),
        _t("details"),
    ]

    def lines():
        yield "\ufeff" + writer.writerow(header)  # Excel needs the BOM to read UTF-8.
        for row in audit_log.audit_rows(filters):
            changes = "; ".join(f"{c.field}: {c.before} → {c.after}" for c in row.changes)
            yield writer.writerow(
                [
                    cell_escape(value)
                    for value in (
                        timezone.localtime(row.at).isoformat(timespec="seconds"),
                        row.actor.get_username() if row.actor else "",
                        row.action,
                        row.member_id or "",
                        row.subject,
                        changes,
                        row.reason,
                        row.details_text,
                    )
                ]
            )

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="audit-{timezone.localdate():%Y-%m-%d}.csv"'
    )
    return response


def _filters_for_audit(filters: audit_log.AuditFilters) -> dict:
    return {
        "actor_id": filters.actor_id,
        "member_id": filters.member_id,
        "kind": filters.kind,
        "date_from": filters.date_from.isoformat() if filters.date_from else None,
        "date_to": filters.date_to.isoformat() if filters.date_to else None,
    }
