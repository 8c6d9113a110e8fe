"""Marketing's catalogue pages: the rewards with their figures, a reward's story, its forms and its
voucher pool. Customer service may read the catalogue (rewards.view_reward) but change nothing.
Customer service's shipping list and redemption search, at the end (issue 14).

Thin: rewards.selectors reads, rewards.services writes (and audits); rewards.jobs holds the
background jobs for large voucher pools.
"""

from datetime import datetime
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.crypto import get_random_string
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_POST

from loyalty_site.errors import DomainError, form_error
from members import selectors as member_selectors
from members.background import job_start
from members.busy import busy_retry
from members.paging import DateRangeForm, keyset_cursor, keyset_parse, member_field
from members.services.audit import audit_action_label
from rewards import jobs as _jobs  # noqa: F401 - registers the catalogue's job kinds
from rewards import selectors, services
from rewards.forms import (
    GENERATE_IN_PAGE_MAX,
    GenerateCodesForm,
    ImportCodesForm,
    RewardForm,
    tier_price_formset,
    tier_prices_of,
)
from rewards.models import ChannelKind, Redemption, Reward

PAGE_SIZE = 25
RECENT_PAGE_SIZE = 20


class CatalogueFilter(forms.Form):
    active = forms.ChoiceField(
        label=gettext_lazy("Active"),
        required=False,
        choices=[
            ("", gettext_lazy("All")),
            ("yes", gettext_lazy("Active")),
            ("no", gettext_lazy("Inactive")),
        ],
    )
    kind = forms.ChoiceField(
        label=gettext_lazy("Kind"),
        required=False,
        choices=[("", gettext_lazy("All kinds")), *Reward.Kind.choices],
    )
    low_stock = forms.BooleanField(
        label=gettext_lazy("Low stock only"),
        required=False,
        help_text=gettext_lazy("%(count)d items or codes left, or fewer.")
        % {"count": selectors.LOW_STOCK},
    )


def _with_channel_labels(rewards):
    labels = dict(ChannelKind.choices)
    for reward in rewards:
        reward.channel_labels = [str(labels.get(code, code)) for code in reward.channels or []]
    return rewards


@login_required
@permission_required("rewards.view_reward", raise_exception=True)
def reward_list(request):
    filters = CatalogueFilter(request.GET or None)
    chosen = filters.cleaned_data if filters.is_valid() else {}
    active = {"yes": True, "no": False}.get(chosen.get("active") or "")
    rewards = selectors.rewards_catalogue(
        active=active, kind=chosen.get("kind") or "", low_stock=bool(chosen.get("low_stock"))
    )
    page = Paginator(rewards, PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = _with_channel_labels(list(page.object_list))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "rewards/reward_list.html",
        {
            "filters": filters,
            "page": page,
            "query": query.urlencode(),
            "now": timezone.now(),
            "low_stock": selectors.LOW_STOCK,
            "can_add": request.user.has_perm("rewards.add_reward"),
        },
    )


def _weekly_chart(weeks) -> dict:
    return {
        "type": "bar",
        "data": {
            "labels": [formats.date_format(week, "j M") for week, _n in weeks],
            "datasets": [
                {
                    "label": _("Redemptions"),
                    "data": [n for _week, n in weeks],
                    "backgroundColor": "#0b6e4f",
                }
            ],
        },
        "options": {
            "plugins": {"legend": {"display": False}},
            "scales": {"y": {"beginAtZero": True, "ticks": {"precision": 0}}},
        },
    }


def _detail(request, reward_id: int, *, generate=None, upload=None, status=200):
    reward = get_object_or_404(selectors.rewards_catalogue(), pk=reward_id)
    _with_channel_labels([reward])
    weeks = selectors.reward_redemptions_weekly(reward=reward)
    can_codes = reward.gives_code and request.user.has_perm("rewards.add_vouchercode")
    recent = None
    if request.user.has_perm("rewards.view_redemption"):
        recent = Paginator(
            selectors.reward_redemptions_recent(reward=reward), RECENT_PAGE_SIZE
        ).get_page(request.GET.get("page"))
    return render(
        request,
        "rewards/reward_detail.html",
        {
            "reward": reward,
            "now": timezone.now(),
            "weeks": weeks,
            "chart": _weekly_chart(weeks),
            "codes": selectors.reward_codes_by_status(reward=reward) if reward.gives_code else None,
            "generate_form": (generate or GenerateCodesForm()) if can_codes else None,
            "import_form": (upload or ImportCodesForm()) if can_codes else None,
            "generate_in_page_max": GENERATE_IN_PAGE_MAX,
            "recent": recent,
            "can_change": request.user.has_perm("rewards.change_reward"),
        },
        status=status,
    )


@login_required
@permission_required("rewards.view_reward", raise_exception=True)
def reward_detail(request, reward_id: int):
    return _detail(request, reward_id)


def _reward_form(request, reward: Reward | None):
    form = RewardForm(request.POST or None, instance=reward)
    prices = tier_price_formset(reward, request.POST or None)
    if request.method == "POST" and form.is_valid() and prices.is_valid():
        try:
            saved = services.reward_save(
                reward=form.save(commit=False),
                visible_tiers=list(form.cleaned_data["visible_tiers"]),
                tier_prices=tier_prices_of(prices),
                stock_seen=form.cleaned_data.get("stock_seen"),
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(request, _("%(reward)s is saved.") % {"reward": saved.name})
            return redirect("reward", reward_id=saved.pk)
    return render(
        request,
        "rewards/reward_form.html",
        {"form": form, "prices": prices, "reward": reward},
        status=400 if request.method == "POST" else 200,
    )


@login_required
@permission_required("rewards.add_reward", raise_exception=True)
def reward_new(request):
    return _reward_form(request, None)


@login_required
@permission_required("rewards.change_reward", raise_exception=True)
def reward_edit(request, reward_id: int):
    return _reward_form(request, get_object_or_404(Reward, pk=reward_id))


def _code_reward(reward_id: int) -> Reward:
    reward = get_object_or_404(Reward, pk=reward_id)
    if not reward.gives_code:
        raise PermissionDenied  # no pool to fill; the page shows no form for it
    return reward


@require_POST
@login_required
@permission_required("rewards.add_vouchercode", raise_exception=True)
def reward_codes_generate(request, reward_id: int):
    reward = _code_reward(reward_id)
    form = GenerateCodesForm(request.POST)
    if not form.is_valid():
        return _detail(request, reward_id, generate=form, status=400)
    count, expires_at = form.cleaned_data["count"], form.cleaned_data["expires_at"]
    if count > GENERATE_IN_PAGE_MAX:
        params = {"reward_id": reward.pk, "count": count}
        if expires_at:
            params["expires_at"] = expires_at.isoformat()
        job = job_start("rewards.codes_generate", params, request.user)
        return redirect("job", job_id=job.pk)
    try:
        created = services.voucher_codes_generate(reward=reward, count=count, expires_at=expires_at)
    except DomainError as error:
        form_error(form, error)
        return _detail(request, reward_id, generate=form, status=400)
    messages.success(
        request,
        ngettext("%(count)d code added.", "%(count)d codes added.", len(created))
        % {"count": len(created)},
    )
    return redirect("reward", reward_id=reward.pk)


@require_POST
@login_required
@permission_required("rewards.add_vouchercode", raise_exception=True)
def reward_codes_import(request, reward_id: int):
    reward = _code_reward(reward_id)
    form = ImportCodesForm(request.POST, request.FILES)
    if not form.is_valid():
        return _detail(request, reward_id, upload=form, status=400)
    upload = form.cleaned_data["file"]
    # The worker reads the file from the shared media storage and deletes it when done.
    suffix = ".xlsx" if upload.name.lower().endswith(".xlsx") else ".csv"
    path = default_storage.save(f"jobs/uploads/{get_random_string(24)}{suffix}", upload)
    job = job_start(
        "rewards.codes_import",
        {"reward_id": reward.pk, "path": path, "name": upload.name},
        request.user,
    )
    return redirect("job", job_id=job.pk)


# --- Customer service: the shipping list (/shipping/) and redemptions (/redemptions/) ----------
#
# Who may: the shipping list needs rewards.view_fulfilment (Customer service, Administrator) and
# moving a parcel on rewards.change_fulfilment; the redemption search needs
# rewards.view_redemption (every role), cancelling rewards.change_redemption (Customer service,
# Administrator). Names and addresses show only to a role that reads members (Finance sees
# member numbers), voucher codes only with rewards.view_vouchercode. Both lists are paged by
# keyset ("next" carries the last row's moment and id), never counted.

SHIPMENTS_PER_PAGE = 50
REDEMPTIONS_PER_PAGE = 50
# A name search may find many members; the page shows the redemptions of this many at most.
REDEMPTIONS_MEMBERS_MAX = 20


def _cursor(redemption: Redemption) -> str:
    return keyset_cursor(redemption.created_at, redemption.pk)


class _PagedSearch(DateRangeForm):
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_after(self) -> tuple[datetime, int] | None:
        return keyset_parse(
            self.cleaned_data["after"],
            broken=gettext_lazy("This page link is broken; start again from the first page."),
        )

    def bounds(self) -> dict:
        start, end = self.moments()
        return {"start": start, "end": end, "cursor": self.cleaned_data.get("after")}


class ShipmentSearchForm(_PagedSearch):
    status = forms.ChoiceField(
        label=gettext_lazy("Shipping status"),
        required=False,
        choices=[("", gettext_lazy("All")), *Redemption.FulfilmentStatus.choices[1:]],
    )
    field_order = ["status", "start", "end"]


class FulfilmentForm(forms.Form):
    status = forms.ChoiceField(
        label=gettext_lazy("New status"), choices=Redemption.FulfilmentStatus.choices[1:]
    )
    tracking_code = forms.CharField(
        label=gettext_lazy("Tracking code"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("Optional; empty keeps the code it has."),
    )
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=255,
        help_text=gettext_lazy("Recorded in the member's audit trail with your name."),
        error_messages={"required": gettext_lazy("Say why you change the shipping status.")},
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=255,
        help_text=gettext_lazy("Recorded in the member's audit trail with your name."),
        error_messages={"required": gettext_lazy("Say why you cancel this reservation.")},
    )


def _back(request, fallback: str) -> str:
    """The page a form came from (its hidden `next`), if it is one of ours; else `fallback`."""
    wanted = request.POST.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return fallback


def _with_next_statuses(rows) -> list:
    for row in rows:
        row.next_statuses = [
            (status, Redemption.FulfilmentStatus(status).label)
            for status in Redemption.FulfilmentStatus.values
            if status in services.FULFILMENT_NEXT.get(row.fulfilment_status, set())
        ]
    return rows


def _shipping_render(request, *, bound: FulfilmentForm | None = None, bound_id=None, status=200):
    form = ShipmentSearchForm(request.GET or None)
    context = {"form": form, "rows": [], "searched": form.is_bound, "bound": bound}
    if form.is_bound and not form.is_valid():
        return render(request, "rewards/shipping.html", context, status=400)
    chosen = form.cleaned_data.get("status", "") if form.is_bound else ""
    rows = selectors.shipments_search(
        status=chosen,
        **(form.bounds() if form.is_bound else {}),
        limit=SHIPMENTS_PER_PAGE + 1,
    )
    more = len(rows) > SHIPMENTS_PER_PAGE
    rows = _with_next_statuses(rows[:SHIPMENTS_PER_PAGE])
    query = request.GET.copy()
    query.pop("after", None)
    export_query = {"export": "shipping", "status": chosen}
    if form.is_bound:
        for name, key in (("start", "date_from"), ("end", "date_to")):
            if form.cleaned_data.get(name):
                export_query[key] = form.cleaned_data[name].isoformat()
    context |= {
        "rows": rows,
        "bound_id": bound_id,
        "query": query.urlencode(),
        "here": request.get_full_path(),
        "next_cursor": _cursor(rows[-1]) if more else None,
        "paged": bool(form.is_bound and form.cleaned_data.get("after")),
        "oldest_first": selectors.shipments_oldest_first(chosen),
        "may_change": request.user.has_perm("rewards.change_fulfilment"),
        # Fifty rows of links and forms: the paths' common starts, reversed once, not per row.
        "redemption_base": reverse("redemptions"),
        "shipping_base": reverse("shipping"),
        "member_base": reverse("member-search"),
        "export_url": f"{reverse('exports')}?{urlencode(export_query)}",
    }
    return render(request, "rewards/shipping.html", context, status=status)


@login_required
@permission_required("rewards.view_fulfilment", raise_exception=True)
@require_GET
def shipping_list(request):
    return _shipping_render(request)


@login_required
@permission_required(("rewards.view_fulfilment", "rewards.change_fulfilment"), raise_exception=True)
@require_POST
def shipping_set(request, redemption_id: int):
    """Move one parcel on (shipped, delivered, returned), with a tracking code and a reason."""
    redemption = get_object_or_404(
        Redemption.objects.exclude(fulfilment_status=""), pk=redemption_id
    )
    form = FulfilmentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            busy_retry(
                lambda: services.fulfilment_set(
                    redemption=redemption,
                    status=data["status"],
                    tracking_code=data["tracking_code"] or None,
                    actor=request.user,
                    reason=data["reason"],
                )
            )
        except DomainError as error:
            form_error(form, error)
        else:
            messages.success(
                request,
                _("Redemption %(id)s: %(status)s.")
                % {
                    "id": redemption.pk,
                    "status": Redemption.FulfilmentStatus(data["status"]).label,
                },
            )
            return redirect(_back(request, reverse("shipping")))
    if request.POST.get("next", "").startswith(reverse("redemption", args=[redemption.pk])):
        return _redemption_render(request, redemption.pk, fulfilment=form, status=400)
    return _shipping_render(request, bound=form, bound_id=redemption.pk, status=400)


class RedemptionSearchForm(_PagedSearch):
    member = member_field()
    reward = forms.ModelChoiceField(
        label=gettext_lazy("Reward"),
        required=False,
        queryset=Reward.objects.order_by("name_en", "pk"),
        empty_label=gettext_lazy("All"),
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Status"),
        required=False,
        choices=[("", gettext_lazy("All")), *Redemption.Status.choices],
    )
    code = forms.CharField(
        label=gettext_lazy("Voucher code"),
        required=False,
        max_length=64,
        help_text=gettext_lazy("Exactly as issued."),
    )
    field_order = ["member", "code", "reward", "status", "start", "end"]

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        # A role that may not read voucher codes may not look redemptions up by one either.
        if not user.has_perm("rewards.view_vouchercode"):
            del self.fields["code"]
        # Finance reads no personal data: it finds a member by number only (the search box
        # would match names, e-mails and phones).
        if not user.has_perm("members.view_member"):
            self.fields["member"].help_text = gettext_lazy("Member number.")

    def clean_member(self):
        return " ".join(self.cleaned_data["member"].split())

    def clean_code(self):
        return self.cleaned_data["code"].strip()


def _shown(user) -> dict:
    return {
        "personal": user.has_perm("members.view_member"),
        "codes": user.has_perm("rewards.view_vouchercode"),
        "address": user.has_perm("rewards.view_fulfilment"),
    }


@login_required
@permission_required("rewards.view_redemption", raise_exception=True)
@require_GET
def redemption_list(request):
    form = RedemptionSearchForm(request.GET or None, user=request.user)
    shown = _shown(request.user)
    context = {"form": form, "rows": [], "searched": form.is_bound, "shown": shown}
    if form.is_bound and not form.is_valid():
        return render(request, "rewards/redemption_list.html", context, status=400)
    data = form.cleaned_data if form.is_bound else {}
    member_ids = None
    if data.get("member"):
        term = data["member"]
        if shown["personal"]:
            member_ids = member_selectors.member_ids_search(term, limit=REDEMPTIONS_MEMBERS_MAX + 1)
        else:
            member_ids = [int(term)] if term.isdecimal() and len(term) <= 18 else []
        context["members_found"] = len(member_ids)
        context["members_max"] = REDEMPTIONS_MEMBERS_MAX
        member_ids = member_ids[:REDEMPTIONS_MEMBERS_MAX]
    rows = []
    if member_ids != []:
        reward = data.get("reward")
        rows = selectors.redemptions_search(
            member_ids=member_ids,
            reward_id=reward.pk if reward else None,
            status=data.get("status", ""),
            code=data.get("code", ""),
            **(form.bounds() if form.is_bound else {}),
            limit=REDEMPTIONS_PER_PAGE + 1,
        )
    more = len(rows) > REDEMPTIONS_PER_PAGE
    rows = rows[:REDEMPTIONS_PER_PAGE]
    query = request.GET.copy()
    query.pop("after", None)
    context |= {
        "rows": rows,
        "query": query.urlencode(),
        "next_cursor": _cursor(rows[-1]) if more else None,
        "paged": bool(data.get("after")),
        "redemption_base": reverse("redemptions"),
        "member_base": reverse("member-search"),
    }
    return render(request, "rewards/redemption_list.html", context)


def _redemption_render(request, redemption_id: int, *, cancel=None, fulfilment=None, status=200):
    redemption = selectors.redemption_detail(redemption_id=redemption_id)
    if redemption is None:
        raise Http404
    user = request.user
    code = getattr(redemption, "voucher_code", None)
    _with_next_statuses([redemption])
    history = selectors.redemption_history(redemption=redemption)
    statuses = dict(Redemption.FulfilmentStatus.choices)
    for entry in history:
        entry.label = audit_action_label(entry.action)
        entry.to_label = statuses.get((entry.details or {}).get("to"), "")
    context = {
        "redemption": redemption,
        "code": code,
        "shown": _shown(user),
        "history": history,
        "may_cancel": user.has_perm("rewards.change_redemption")
        and redemption.status == Redemption.Status.RESERVED,
        # The member page's resend action (loyalty_site), which sends and audits it.
        "may_resend": user.has_perms(("rewards.view_vouchercode", "rewards.change_redemption"))
        and code is not None
        and code.status == code.Status.ISSUED
        and redemption.status == Redemption.Status.CONFIRMED,
        "may_ship": user.has_perms(("rewards.view_fulfilment", "rewards.change_fulfilment"))
        and bool(redemption.next_statuses),
        "cancel_form": cancel or CancelForm(),
        "fulfilment_form": fulfilment or FulfilmentForm(),
        "here": request.path,
    }
    return render(request, "rewards/redemption_detail.html", context, status=status)


@login_required
@permission_required("rewards.view_redemption", raise_exception=True)
@require_GET
def redemption_view(request, redemption_id: int):
    return _redemption_render(request, redemption_id)


@login_required
@permission_required(("rewards.view_redemption", "rewards.change_redemption"), raise_exception=True)
@require_POST
def redemption_cancel(request, redemption_id: int):
    """Cancel a reservation (points, stock and voucher code return), with a reason."""
    redemption = get_object_or_404(Redemption, pk=redemption_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _redemption_render(request, redemption.pk, cancel=form, status=400)
    try:
        busy_retry(
            lambda: services.redemption_cancel(
                redemption=redemption, actor=request.user, reason=form.cleaned_data["reason"]
            )
        )
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(
            request,
            _("The reservation is cancelled; its %(points)s points and the stock are back.")
            % {"points": redemption.points},
        )
    return redirect("redemption", redemption_id=redemption.pk)
