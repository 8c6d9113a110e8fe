"""Marketing's catalogue pages: the rewards with their figures, a reward's story, its forms and its
voucher pool. Customer service may read the catalogue (rewards.view_reward) but change nothing.

Thin: rewards.selectors reads, rewards.services writes (and audits); rewards.jobs holds the
background jobs for large voucher pools.
"""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.utils.crypto import get_random_string
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from loyalty_site.errors import DomainError, form_error
from members.background import job_start
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
from rewards.models import ChannelKind, Reward

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
