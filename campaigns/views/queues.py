"""Customer service's two work queues: purchases the abuse guard stopped (/reviews/) and
engagement events that wait for a moderator (/moderation/).

Both are lists, oldest first, with a decision per row and for the selected rows. A bulk decision
is one service call per row, each its own transaction (and run again by ``busy_retry`` when the
database picks it as a deadlock's victim), so a refused row (decided meanwhile in another tab,
say) leaves the others done; the page then says how many were done and which were refused, and
why. The services audit each decision with the reason given here.
"""

from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from campaigns import selectors, services
from campaigns.models import EngagementEvent, EngagementKind, PurchaseReview
from ledger.views import member_url
from loyalty_site.errors import DomainError, NotFound
from members.busy import busy_retry

QUEUE_PER_PAGE = 50
APPROVE, REJECT = "approve", "reject"


def _bad_selection() -> str:
    return _("The selection is not valid; reload the page.")


class RowIdsField(forms.Field):
    """The ids of the ticked rows (checkboxes named ``selected``)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value):
        try:
            return sorted({int(item) for item in value or []})
        except (TypeError, ValueError):
            raise forms.ValidationError(_bad_selection()) from None


class QueueDecisionForm(forms.Form):
    """One submit button named ``decide``: "approve" or "reject" for the ticked rows, or
    "approve:<id>" / "reject:<id>" for the row whose button was pressed."""

    decide = forms.CharField(required=False)
    selected = RowIdsField(required=False)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=255, required=False)

    def clean(self):
        cleaned = super().clean()
        action, _sep, row = (cleaned.get("decide") or "").partition(":")
        if action not in (APPROVE, REJECT):
            raise forms.ValidationError(_("Press Approve or Reject."))
        if row:
            try:
                ids = [int(row)]
            except ValueError:
                raise forms.ValidationError(_bad_selection()) from None
        else:
            ids = cleaned.get("selected") or []
        if not ids and "selected" not in self.errors:
            raise forms.ValidationError(_("Tick at least one row first."))
        if action == REJECT and not cleaned.get("reason", "").strip():
            self.add_error("reason", _("Say why you reject it: the reason goes to the audit log."))
        cleaned["action"], cleaned["ids"] = action, ids
        return cleaned


def _decide(
    request,
    rows: list,
    ids: list[int],
    decide: Callable,
    *,
    label: Callable[[object], str],
    done: Callable[[int], str],
) -> None:
    """``decide(row)`` for each row, each its own transaction; messages for the outcome."""
    found = {row.pk for row in rows}
    refused = [(f"#{pk}", NotFound().detail) for pk in ids if pk not in found]
    count = 0
    for row in rows:
        try:
            busy_retry(lambda row=row: decide(row))
        except DomainError as error:
            refused.append((label(row), error.detail))
        else:
            count += 1
    if count:
        messages.success(request, done(count))
    for name, why in refused:
        messages.error(request, f"{name}: {why}")


def _page(request, rows):
    page = Paginator(rows, QUEUE_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = list(page.object_list)
    for row in page.object_list:
        row.member_url = member_url(row.member_id)
    return page


def _query(request) -> str:
    """The page's filters, for the pager's links (without the page number)."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


# --- Purchases the abuse guard stopped (/reviews/) ---------------------------------------------


class ReviewFilterForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("Status"), choices=PurchaseReview.Status.choices, required=False
    )
    store = forms.ChoiceField(label=gettext_lazy("Store"), required=False)
    start = forms.DateField(
        label=gettext_lazy("Bought from"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    end = forms.DateField(
        label=gettext_lazy("Bought until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
    )

    def __init__(self, *args, stores: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["store"].choices = [("", _("All stores"))] + [(s, s) for s in stores]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", _("The end date comes before the start date."))
        return cleaned

    def filters(self) -> dict:
        """The selector's arguments; a field with bad input (shown as an error) is left out."""
        data = self.cleaned_data if self.is_bound else {}
        zone = ZoneInfo(settings.TIME_ZONE)
        start, end = data.get("start"), data.get("end")
        return {
            "status": data.get("status") or PurchaseReview.Status.OPEN,
            "store": data.get("store") or "",
            # Days in the programme's time zone; "until" includes its whole day.
            "start": datetime.combine(start, time.min, tzinfo=zone) if start else None,
            "end": (
                datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone) if end else None
            ),
        }


REVIEW_DONE = {
    APPROVE: lambda n: (
        ngettext("%(n)d purchase approved.", "%(n)d purchases approved.", n) % {"n": n}
    ),
    REJECT: lambda n: (
        ngettext("%(n)d purchase rejected.", "%(n)d purchases rejected.", n) % {"n": n}
    ),
}


def _reviews_render(request, decision_form=None):
    filters_form = ReviewFilterForm(request.GET or None, stores=selectors.purchase_review_stores())
    if filters_form.is_bound:
        filters_form.is_valid()
    filters = filters_form.filters()
    page = _page(request, selectors.purchase_reviews(**filters))
    context = {
        "filters_form": filters_form,
        "decision_form": decision_form or QueueDecisionForm(),
        "page": page,
        "query": _query(request),
        "open_count": PurchaseReview.objects.filter(status=PurchaseReview.Status.OPEN).count(),
        "deciding": filters["status"] == PurchaseReview.Status.OPEN,
        "status_label": PurchaseReview.Status(filters["status"]).label,
    }
    return render(request, "campaigns/queues/reviews.html", context)


@login_required
@permission_required("campaigns.change_purchasereview", raise_exception=True)
def reviews(request):
    if request.method != "POST":
        return _reviews_render(request)
    form = QueueDecisionForm(request.POST)
    if not form.is_valid():
        return _reviews_render(request, form)
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"].strip()
    service = (
        services.purchase_review_approve if action == APPROVE else services.purchase_review_reject
    )
    rows = list(
        PurchaseReview.objects.filter(pk__in=form.cleaned_data["ids"])
        .select_related("purchase", "member")
        .order_by("created_at", "pk")
    )
    _decide(
        request,
        rows,
        form.cleaned_data["ids"],
        lambda review: service(review=review, actor=request.user, reason=reason),
        label=lambda review: f"{review.member} · {review.purchase.external_id}",
        done=REVIEW_DONE[action],
    )
    return redirect(request.get_full_path())


# --- Engagement events that wait for a moderator (/moderation/) --------------------------------


class ModerationFilterForm(forms.Form):
    kind = forms.ModelChoiceField(
        label=gettext_lazy("Kind"),
        queryset=EngagementKind.objects.order_by("name"),
        required=False,
        empty_label=gettext_lazy("All kinds"),
    )


EVENT_DONE = {
    APPROVE: lambda n: ngettext("%(n)d event approved.", "%(n)d events approved.", n) % {"n": n},
    REJECT: lambda n: ngettext("%(n)d event rejected.", "%(n)d events rejected.", n) % {"n": n},
}


def _moderation_render(request, decision_form=None):
    filters_form = ModerationFilterForm(request.GET or None)
    kind = filters_form.cleaned_data.get("kind") if filters_form.is_valid() else None
    page = _page(request, selectors.events_awaiting_moderation(kind_id=kind.pk if kind else None))
    context = {
        "filters_form": filters_form,
        "decision_form": decision_form or QueueDecisionForm(),
        "page": page,
        "query": _query(request),
        "waiting_count": EngagementEvent.objects.filter(
            status=EngagementEvent.Status.PENDING
        ).count(),
    }
    return render(request, "campaigns/queues/moderation.html", context)


@login_required
@permission_required("campaigns.change_engagementevent", raise_exception=True)
def moderation(request):
    if request.method != "POST":
        return _moderation_render(request)
    form = QueueDecisionForm(request.POST)
    if not form.is_valid():
        return _moderation_render(request, form)
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"].strip()
    service = services.event_approve if action == APPROVE else services.event_reject
    rows = list(
        EngagementEvent.objects.filter(pk__in=form.cleaned_data["ids"])
        .select_related("member", "kind")
        .order_by("created_at", "pk")
    )
    _decide(
        request,
        rows,
        form.cleaned_data["ids"],
        lambda event: service(event=event, actor=request.user, reason=reason),
        label=lambda event: f"{event.member} · {event.kind.name}",
        done=EVENT_DONE[action],
    )
    return redirect(request.get_full_path())
