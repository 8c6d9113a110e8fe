"""Customer service's member search and member page, with the actions on a member.

The views are thin: the reads come from ``loyalty_site.member_page`` (composed from every app's
selectors), every change from the service the admin calls too, with the staff user and the
reason the form asks for (the services audit them). A service's refusal (a card already
blocked, a debit larger than the balance) becomes an error message and writes nothing; bad
input shows the page again with the form's errors.

Every view checks its permission itself; the page shows a form only to a role that may use it.
"""

import json

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from campaigns import services as campaign_services
from ledger import services as ledger_services
from ledger.models import AdjustmentRequest
from ledger.services.adjustments import adjustment_too_large
from loyalty_site import member_page
from loyalty_site.errors import DomainError
from loyalty_site.privacy import member_erase, member_export
from members import services as member_services
from members.busy import busy_retry
from members.models import Card, Consent, Member
from rewards.models import Redemption

# --- forms: input checks only; the services decide ---

REASON_HELP = gettext_lazy("Recorded in the member's audit trail with your name.")


def _reason_field(help_text=REASON_HELP):
    return forms.CharField(
        label=gettext_lazy("Reason"),
        max_length=255,
        help_text=help_text,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class AdjustForm(forms.Form):
    points = forms.IntegerField(
        label=gettext_lazy("Points"),
        help_text=gettext_lazy("Positive to credit, negative to debit."),
    )
    reason = _reason_field()

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("The adjustment must be a whole number other than zero."))
        if abs(points) > settings.LOYALTY_ADJUSTMENT_MAX_POINTS:
            raise forms.ValidationError(adjustment_too_large())
        return points


class ReasonForm(forms.Form):
    reason = _reason_field()


class VoucherResendForm(forms.Form):
    channel = forms.ChoiceField(
        label=gettext_lazy("Send by"),
        choices=[("email", gettext_lazy("E-mail")), ("sms", gettext_lazy("SMS"))],
    )
    reason = _reason_field()


class ConsentForm(forms.Form):
    purpose = forms.ChoiceField(label=gettext_lazy("Purpose"), choices=Consent.Purpose.choices)
    # The form's two buttons send it.
    action = forms.ChoiceField(choices=Consent.Action.choices, widget=forms.HiddenInput)
    reason = _reason_field(
        gettext_lazy("E.g. “asked on the phone”. Recorded in the member's audit trail.")
    )


class ExportForm(forms.Form):
    reason = _reason_field(
        gettext_lazy("E.g. the member's access request and its date. Recorded in the audit trail.")
    )


class EraseForm(forms.Form):
    reason = _reason_field(
        gettext_lazy("E.g. the member's erasure request and its date. Recorded in the audit trail.")
    )
    confirmation = forms.CharField(
        label=gettext_lazy("Type the member's number to confirm"),
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )

    def __init__(self, *args, member: Member, **kwargs):
        super().__init__(*args, **kwargs)
        self.member = member

    def clean_confirmation(self):
        typed = self.cleaned_data["confirmation"].strip()
        if typed != str(self.member.pk):
            raise forms.ValidationError(
                _("Type %(number)s, the member's number, to confirm.") % {"number": self.member.pk}
            )
        return typed


def _forms(member: Member, bound: dict | None = None) -> dict:
    """Every action's form, unbound, but for the one just posted with errors."""
    made = {
        "adjust": AdjustForm(prefix="adjust"),
        "consent": ConsentForm(prefix="consent"),
        "export": ExportForm(prefix="export"),
        "erase": EraseForm(prefix="erase", member=member),
        "card": ReasonForm(prefix="card"),
    }
    made.update(bound or {})
    return made


# --- the pages ---


def _member(request, member_id: int) -> Member:
    if not member_page.may_open(request.user):
        raise PermissionDenied
    member = member_page.member_for_page(member_id)
    if member is None:
        raise Http404
    return member


def _tab_allowed(request, slug: str) -> member_page.Tab:
    tab = member_page.TAB_BY_SLUG[slug]
    if tab.permission is not None and not request.user.has_perm(tab.permission):
        raise PermissionDenied
    return tab


def _page_number(request) -> int:
    try:
        return max(1, int(request.GET.get("page", 1)))
    except ValueError:
        return 1


def _render_tab(request, member: Member, slug: str, context: dict, *, status: int = 200):
    """The member page with the tab ``slug``; to htmx, only the tabs and the panel."""
    shown = member_page.shown_for(request.user)
    context = {
        **member_page.member_header(member=member, shown=shown),
        "shown": shown,
        "tabs": member_page.tabs_for(request.user),
        "tab": member_page.TAB_BY_SLUG[slug],
        "panel_template": f"member_page/panel_{slug}.html",
        # The queues another page holds, linked from the rows that wait in them.
        "approvals_url": reverse("approvals"),
        "reviews_url": reverse("reviews"),
        **context,
    }
    # htmx asks for the tab alone, but for a page it restores from history (a cache miss).
    fragment = (
        request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request
    )
    template = "member_page/tabs.html" if fragment else "member_page/member.html"
    return render(request, template, context, status=status)


@login_required
@permission_required("members.view_member", raise_exception=True)
@require_GET
def member_search(request):
    """The search box of every page: one member found opens their page; several, a list."""
    term = " ".join(request.GET.get("q", "").split())
    number = _page_number(request)
    context = {"search_query": term, "rows": [], "number": number, "has_next": False}
    if term:
        shown = member_page.shown_for(request.user)
        rows, has_next = member_page.search_page(term=term, number=number, shown=shown)
        if number == 1 and len(rows) == 1 and not has_next:
            return redirect("member-page", member_id=rows[0]["member"].pk)
        context.update(rows=rows, has_next=has_next, shown=shown)
    return render(request, "member_page/search.html", context)


@login_required
@require_GET
def member_page_view(request, member_id: int):
    member = _member(request, member_id)
    return _overview(request, member)


def _overview(request, member: Member, *, bound: dict | None = None, status: int = 200):
    shown = member_page.shown_for(request.user)
    context = {
        **member_page.member_overview(member=member, shown=shown),
        "forms": _forms(member, bound),
        "threshold": settings.LOYALTY_ADJUSTMENT_APPROVAL_THRESHOLD,
    }
    return _render_tab(request, member, "overview", context, status=status)


def _paged_tab(slug: str, read):
    @login_required
    @require_GET
    def view(request, member_id: int):
        member = _member(request, member_id)
        _tab_allowed(request, slug)
        page = read(member=member, number=_page_number(request))
        return _render_tab(request, member, slug, {"page": page})

    view.__name__ = f"member_{slug}"
    return view


member_ledger = _paged_tab("ledger", member_page.ledger_page)
member_purchases = _paged_tab("purchases", member_page.purchases_page)
member_redemptions = _paged_tab("redemptions", member_page.redemptions_page)
member_messages = _paged_tab("messages", member_page.messages_page)
member_audit = _paged_tab("audit", member_page.audit_page)


@login_required
@require_GET
def member_engagement(request, member_id: int):
    member = _member(request, member_id)
    _tab_allowed(request, "engagement")
    shown = member_page.shown_for(request.user)
    return _render_tab(
        request, member, "engagement", member_page.engagement(member=member, shown=shown)
    )


# --- the actions ---


def _act(request, member: Member, write, done) -> HttpResponse:
    """Run one service call; its refusal is an error message and nothing is written."""
    try:
        result = busy_retry(write)
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        messages.success(request, done(result))
    return redirect("member-page", member_id=member.pk)


@login_required
@permission_required("ledger.add_adjustmentrequest", raise_exception=True)
@require_POST
def member_adjust(request, member_id: int):
    member = _member(request, member_id)
    form = AdjustForm(request.POST, prefix="adjust")
    if not form.is_valid():
        return _overview(request, member, bound={"adjust": form}, status=400)

    def done(result) -> str:
        if isinstance(result, AdjustmentRequest):
            return _(
                "The adjustment of %(points)+d points waits for a second person's approval; "
                "nothing is posted until then."
            ) % {"points": result.points}
        return _("%(points)+d points posted. New balance: %(balance)s.") % {
            "points": result.amount,
            "balance": result.balance_after,
        }

    return _act(
        request,
        member,
        lambda: ledger_services.points_adjust(
            member=member,
            points=form.cleaned_data["points"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
        ),
        done,
    )


def _card_action(request, member_id: int, card_id: int, service, done):
    member = _member(request, member_id)
    card = get_object_or_404(Card, pk=card_id, member=member)
    form = ReasonForm(request.POST, prefix="card")
    if not form.is_valid():
        form.card_id = card.pk
        return _overview(request, member, bound={"card": form}, status=400)
    reason = form.cleaned_data["reason"]
    return _act(
        request,
        member,
        lambda: service(card=card, actor=request.user, reason=reason),
        lambda result: done(card, result),
    )


@login_required
@permission_required(
    ("rewards.view_vouchercode", "rewards.change_redemption"), raise_exception=True
)
@require_POST
def member_voucher_resend(request, member_id: int, redemption_id: int):
    """Send a redemption's voucher code to the member again (e-mail or SMS), with a reason."""
    member = _member(request, member_id)
    redemption = get_object_or_404(Redemption, pk=redemption_id, member=member)
    form = VoucherResendForm(request.POST, prefix="voucher")
    # The redemptions page (/redemptions/<id>/) posts here too and asks to come back to it.
    wanted = request.POST.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        back = redirect(wanted)
    else:
        back = redirect("member-page-redemptions", member_id=member.pk)
    if not form.is_valid():
        for errors in form.errors.values():
            messages.error(request, " ".join(errors))
        return back
    channel = form.cleaned_data["channel"]
    try:
        campaign_services.voucher_resend(
            redemption=redemption,
            actor=request.user,
            reason=form.cleaned_data["reason"],
            channel=channel,
        )
    except DomainError as error:
        messages.error(request, error.detail)
    else:
        to = member.email if channel == "email" else str(member.phone)
        messages.success(request, _("The voucher code was sent again to %(to)s.") % {"to": to})
    return back


@login_required
@permission_required("members.change_card", raise_exception=True)
@require_POST
def member_card_block(request, member_id: int, card_id: int):
    return _card_action(
        request,
        member_id,
        card_id,
        member_services.card_block,
        lambda card, _result: _("Card %(number)s is blocked.") % {"number": card.number},
    )


@login_required
@permission_required("members.change_card", raise_exception=True)
@require_POST
def member_card_replace(request, member_id: int, card_id: int):
    return _card_action(
        request,
        member_id,
        card_id,
        member_services.card_replace,
        lambda card, new_card: (
            _("Card %(old)s is replaced. The new card number is %(new)s.")
            % {"old": card.number, "new": new_card.number}
        ),
    )


@login_required
@permission_required("members.add_consent", raise_exception=True)
@require_POST
def member_consent(request, member_id: int):
    member = _member(request, member_id)
    form = ConsentForm(request.POST, prefix="consent")
    if not form.is_valid():
        return _overview(request, member, bound={"consent": form}, status=400)
    data = form.cleaned_data
    granting = data["action"] == Consent.Action.GRANT
    service = member_services.consent_grant if granting else member_services.consent_withdraw
    label = dict(Consent.Purpose.choices)[data["purpose"]]
    return _act(
        request,
        member,
        lambda: service(
            member=member,
            purpose=data["purpose"],
            channel="back office",
            actor=request.user,
            reason=data["reason"],
        ),
        lambda _consent: (
            (
                _("Consent granted: %(purpose)s.")
                if granting
                else _("Consent withdrawn: %(purpose)s.")
            )
            % {"purpose": label}
        ),
    )


@login_required
@permission_required("members.export_member", raise_exception=True)
@require_POST
def member_export_view(request, member_id: int):
    """The member's personal data as a JSON download (the export is audited, with its reason)."""
    member = _member(request, member_id)
    form = ExportForm(request.POST, prefix="export")
    if not form.is_valid():
        return _overview(request, member, bound={"export": form}, status=400)
    document = member_export(member=member, actor=request.user, reason=form.cleaned_data["reason"])
    response = HttpResponse(json.dumps(document, indent=2), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="member-{member.public_id}.json"'
    return response


@login_required
@permission_required("members.erase_member", raise_exception=True)
@require_POST
def member_erase_view(request, member_id: int):
    member = _member(request, member_id)
    form = EraseForm(request.POST, prefix="erase", member=member)
    if not form.is_valid():
        return _overview(request, member, bound={"erase": form}, status=400)
    return _act(
        request,
        member,
        lambda: member_erase(member=member, actor=request.user, reason=form.cleaned_data["reason"]),
        lambda _erased: _(
            "The member's personal data is erased; their points ledger stays, without it."
        ),
    )
