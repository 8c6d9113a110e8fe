"""The ledger's back-office pages (routes in ledger/urls.py, templates in templates/ledger/).

Views are thin: they read through ``ledger.selectors``, write through ``ledger.services``, and
turn a service's refusal (a ``DomainError``) into a message or a form error.
"""

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
from ledger.models import AdjustmentRequest
from loyalty_site.errors import DomainError
from members.busy import busy_retry


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
