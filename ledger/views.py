"""The ledger's back-office pages (routes in ledger/urls.py, templates in templates/ledger/).

Views are thin: they read through ``ledger.selectors``, write through ``ledger.services``, and
turn a service's refusal (a ``DomainError``) into a message or a form error.
"""

from collections.abc import Callable
from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from ledger import errors, selectors, services
from ledger.models import AdjustmentRequest, Entry
from loyalty_site.errors import DomainError
from members import selectors as member_selectors
from members.busy import busy_retry
from members.paging import DateRangeForm, keyset_cursor, keyset_parse, member_field


def member_url(member_id: int) -> str:
    """The customer-service member page (loyalty_site's member page)."""
    return reverse("member-page", args=[member_id])


# --- The approval queue of staff adjustments (/approvals/) -------------------------------------
#
# Who may: the approvers (``ledger.approve_adjustmentrequest``: Finance, Administrator) see every
# waiting request and decide; a requester without that permission (Customer service) sees only
# their own requests, read-only, to follow them up. The four-eyes rule is the service's: it
# refuses a decision by the requester, and the page shows its message.

APPROVALS_PER_PAGE = 25


class AdjustmentRejectForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=255,
        error_messages={"required": gettext_lazy("Say why you reject this adjustment.")},
    )


def _page_number(request) -> int:
    try:
        return max(int(request.POST.get("page") or request.GET.get("page") or 1), 1)
    except ValueError:
        return 1


def _approvals_render(request, *, rejecting: int | None = None, reject_form=None):
    may_decide = request.user.has_perm("ledger.approve_adjustmentrequest")
    own = None if may_decide else request.user
    decided_tab = request.GET.get("show") == "decided"
    pending = selectors.adjustment_requests_pending(requested_by=own)
    waiting = pending.count()
    rows = selectors.adjustment_requests_decided(requested_by=own) if decided_tab else pending
    paginator = Paginator(rows, APPROVALS_PER_PAGE)
    page = paginator.get_page(_page_number(request))
    page.object_list = list(page.object_list)
    for row in page.object_list:
        row.member_url = member_url(row.account.member_id)
        row.own = row.requested_by_id == request.user.pk
    context = {
        "may_decide": may_decide,
        "may_request": request.user.has_perm("ledger.add_adjustmentrequest"),
        "decided_tab": decided_tab,
        "waiting": waiting,
        "page": page,
        "query": "show=decided" if decided_tab else "",
        "rejecting": rejecting,
        "reject_form": reject_form,
        "threshold": settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD,
        "daily_limit": settings.LOYALTY_ADJUSTMENT_DAILY_LIMIT,
        "self_approval": errors.SelfApproval.default_detail,
    }
    return render(request, "ledger/approvals.html", context)


def _approvals_back(request):
    page = _page_number(request)
    url = reverse("approvals")
    return redirect(f"{url}?page={page}" if page > 1 else url)


@login_required
@permission_required("ledger.view_adjustmentrequest", raise_exception=True)
@require_GET
def approvals(request):
    return _approvals_render(request)


def _adjustment(pk: int) -> AdjustmentRequest:
    return get_object_or_404(AdjustmentRequest.objects.select_related("account__member"), pk=pk)


@login_required
@permission_required("ledger.approve_adjustmentrequest", raise_exception=True)
@require_POST
def approval_approve(request, pk: int):
    adjustment = _adjustment(pk)
    member = adjustment.account.member
    try:
        # A deadlock's victim is run again; losing every time is WriteBusy, a refusal too.
        entry = busy_retry(
            lambda: services.adjustment_approve(request=adjustment, actor=request.user)
        )
    except DomainError as error:
        messages.error(request, f"{member}: {error.detail}")
    else:
        messages.success(
            request,
            _("%(member)s: %(points)+d points approved and posted; the balance is now %(balance)s.")
            % {"member": member, "points": entry.amount, "balance": entry.balance_after},
        )
    return _approvals_back(request)


@login_required
@permission_required("ledger.approve_adjustmentrequest", raise_exception=True)
@require_POST
def approval_reject(request, pk: int):
    adjustment = _adjustment(pk)
    form = AdjustmentRejectForm(request.POST)
    if not form.is_valid():
        return _approvals_render(request, rejecting=adjustment.pk, reject_form=form)
    member = adjustment.account.member
    try:
        busy_retry(
            lambda: services.adjustment_reject(
                request=adjustment, actor=request.user, reason=form.cleaned_data["reason"]
            )
        )
    except DomainError as error:
        messages.error(request, f"{member}: {error.detail}")
    else:
        messages.success(
            request,
            _("%(member)s: the adjustment of %(points)+d points was rejected; nothing was posted.")
            % {"member": member, "points": adjustment.points},
        )
    return _approvals_back(request)


# --- The points ledger (/ledger/) ---------------------------------------------------------------
#
# Every entry, newest first, searched by member or reference and filtered by kind, channel and
# date. Paged by keyset ("older entries" carries the last row's moment and id), never counted:
# the table holds tens of millions of rows. The channels are the project's table
# (loyalty_site.models.Channel), which an app may not import: loyalty_site/urls.py hands the
# view a function that lists their names.

ENTRIES_PER_PAGE = 50
# A name search may find many members; the page shows the entries of this many at most.
ENTRIES_MEMBERS_MAX = 20


def entries_cursor(entry: Entry) -> str:
    """The "older entries" link's position (members.paging)."""
    return keyset_cursor(entry.created_at, entry.pk)


class EntrySearchForm(DateRangeForm):
    member = member_field()
    reference = forms.CharField(
        label=gettext_lazy("Reference"),
        required=False,
        max_length=128,
        help_text=gettext_lazy("Exactly as recorded."),
    )
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), required=False)
    channel = forms.ChoiceField(label=gettext_lazy("Channel"), required=False)
    before = forms.CharField(required=False, widget=forms.HiddenInput)
    field_order = ["member", "reference", "kind", "channel", "start", "end"]

    def __init__(self, *args, channels: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        everything = [("", gettext_lazy("All"))]
        self.fields["kind"].choices = [*everything, *Entry.Kind.choices]
        self.fields["channel"].choices = [*everything, *((name, name) for name in channels)]

    def clean_before(self) -> tuple[datetime, int] | None:
        return keyset_parse(
            self.cleaned_data["before"],
            broken=gettext_lazy("This page link is broken; start again from the newest entries."),
        )


@login_required
@permission_required("ledger.view_entry", raise_exception=True)
@require_GET
def ledger_entries(request, *, channel_names: Callable[[], list[str]]):
    form = EntrySearchForm(request.GET or None, channels=channel_names())
    context = {"form": form, "entries": [], "searched": False, "members_found": None}
    if form.is_bound and not form.is_valid():
        return render(request, "ledger/entries.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    member_ids = None
    if data.get("member"):
        member_ids = member_selectors.member_ids_search(
            data["member"], limit=ENTRIES_MEMBERS_MAX + 1
        )
        context["members_found"] = len(member_ids)
        context["members_max"] = ENTRIES_MEMBERS_MAX
        member_ids = member_ids[:ENTRIES_MEMBERS_MAX]
    entries = []
    if member_ids != []:
        start, end = form.moments() if form.is_bound else (None, None)
        entries = selectors.entries_search(
            member_ids=member_ids,
            reference=data.get("reference", ""),
            kind=data.get("kind", ""),
            channel=data.get("channel", ""),
            start=start,
            end=end,
            before=data.get("before"),
            limit=ENTRIES_PER_PAGE + 1,
        )
    more = len(entries) > ENTRIES_PER_PAGE
    entries = entries[:ENTRIES_PER_PAGE]
    may_open_member = request.user.has_perm("members.view_member")
    for entry in entries:
        entry.member_url = member_url(entry.account.member_id) if may_open_member else None
    query = request.GET.copy()
    query.pop("before", None)
    context |= {
        "entries": entries,
        "searched": form.is_bound,
        "query": query.urlencode(),
        "older": entries_cursor(entries[-1]) if more else None,
        "paged": bool(data.get("before")),
    }
    return render(request, "ledger/entries.html", context)
