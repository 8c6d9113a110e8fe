"""The reads of customer service's member search and member page, composed from every app.

The member page spans every app, so it is composed here, at the top (DESIGN §2): each part comes
from its app's selectors. What a staff user sees follows their role's permissions, part by part:
the personal data (profile, consents, cards) only with the members permissions, the points with
the ledger's, and so on. Finance reads the ledger but no personal data, so its page of a member
is the points part alone, under the member's number and public id instead of their name.

Every part reads a bounded number of rows: the lists are paginated or capped, so that the page
answers in the same number of queries for a member with five entries or fifty thousand.
"""

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.utils.translation import gettext_lazy as _

from campaigns import selectors as campaign_selectors
from campaigns.tiers import tier_progress
from ledger import selectors as ledger_selectors
from members import selectors as member_selectors
from members.models import Card, Consent, Member
from members.services.audit import audit_action_label
from rewards import selectors as reward_selectors

# Lots expiring within this many days are shown on the member page as "expiring soon".
EXPIRING_SOON_DAYS = 90
PAGE_SIZE = 25
# The overview shows the most recent rows of these histories; the tabs show them all, by page.
RECENT_ROWS = 10


@dataclass(frozen=True)
class Tab:
    slug: str
    title: str
    url_name: str
    # None: every user who may open the member page sees it.
    permission: str | None


TABS = [
    Tab("overview", _("Overview"), "member-page", None),
    Tab("ledger", _("Points ledger"), "member-page-ledger", "ledger.view_entry"),
    Tab("purchases", _("Purchases and returns"), "member-page-purchases", "ledger.view_purchase"),
    Tab(
        "redemptions",
        _("Redemptions and vouchers"),
        "member-page-redemptions",
        "rewards.view_redemption",
    ),
    Tab("messages", _("Messages"), "member-page-messages", "campaigns.view_campaignmessage"),
    Tab(
        "engagement",
        _("Challenges and badges"),
        "member-page-engagement",
        "campaigns.view_challengeprogress",
    ),
    Tab("audit", _("Audit trail"), "member-page-audit", "members.view_auditentry"),
]
TAB_BY_SLUG = {tab.slug: tab for tab in TABS}


def may_open(user) -> bool:
    """Whether ``user`` may open a member page at all: with the members' view permission (the
    whole story), or with the ledger's (Finance: the points alone)."""
    return user.has_perm("members.view_member") or user.has_perm("ledger.view_account")


def tabs_for(user) -> list[Tab]:
    return [tab for tab in TABS if tab.permission is None or user.has_perm(tab.permission)]


def shown_for(user) -> dict[str, bool]:
    """Which parts of the page ``user``'s role may see (and which actions it may take)."""
    perm = user.has_perm
    return {
        "personal": perm("members.view_member"),
        "consents": perm("members.view_consent"),
        "cards": perm("members.view_card"),
        "tier": perm("members.view_tier"),
        "tier_history": perm("members.view_tierhistory"),
        "points": perm("ledger.view_account"),
        "vouchers": perm("rewards.view_vouchercode"),
        "badges": perm("campaigns.view_memberbadge"),
        # actions
        "adjust": perm("ledger.add_adjustmentrequest"),
        "change_card": perm("members.change_card"),
        "change_consent": perm("members.add_consent"),
        "export": perm("members.export_member"),
        "erase": perm("members.erase_member"),
    }


def member_for_page(member_id: int) -> Member | None:
    return Member.objects.select_related("tier").filter(pk=member_id).first()


def member_title(member: Member, *, personal: bool) -> str:
    """The member's name for a role that sees personal data; otherwise (or without a name,
    e.g. once erased) their number."""
    if personal:
        name = f"{member.first_name} {member.last_name}".strip()
        if name:
            return name
        if member.status == Member.Status.ERASED:
            return str(_("Erased member no. %(number)s") % {"number": member.pk})
    return str(_("Member no. %(number)s") % {"number": member.pk})


def member_header(*, member: Member, shown: dict) -> dict:
    """The member's name (or number), status and, for roles that read the ledger, the points
    figures: balance, available, held, pending, and the points expiring soon."""
    header = {
        "member": member,
        "title": member_title(member, personal=shown["personal"]),
        "points": None,
        "expiring": None,
    }
    if shown["points"]:
        header["points"] = ledger_selectors.balance_summary(member=member)
        header["expiring"] = (
            ledger_selectors.points_expiring_soon(days=EXPIRING_SOON_DAYS, member=member).first()
            or None
        )
    return header


def _profile_rows(member: Member) -> list[tuple[str, object, str]]:
    """(label, value, kind) of the profile: kind "date", "datetime" or "text" for the page."""
    return [
        (_("First name"), member.first_name, "text"),
        (_("Last name"), member.last_name, "text"),
        (_("E-mail"), member.email, "text"),
        (_("Phone"), str(member.phone or ""), "text"),
        (_("Birth date"), member.birth_date, "date"),
        (_("Language"), member.locale, "text"),
        (_("External customer number"), member.external_id, "text"),
        (_("Public id"), member.public_id, "text"),
        (_("Enrolled"), member.enrolled_at, "datetime"),
        (_("Enrolled through"), member.enrolled_channel, "text"),
        (_("Latest NPS score"), member.nps_score, "text"),
    ]


def member_overview(*, member: Member, shown: dict) -> dict:
    """Profile and golden-profile attributes, consents with history, cards, tier with progress
    and history, the lots expiring soon and the pending points: each part only when shown."""
    overview: dict = {}
    if shown["personal"]:
        overview["profile"] = _profile_rows(member)
        overview["attributes"] = sorted((member.profile or {}).items())
    if shown["consents"]:
        current = member_selectors.consents_current(member=member)
        labels = dict(Consent.Purpose.choices)
        overview["consents"] = [
            {"purpose": purpose, "label": labels[purpose], **state}
            for purpose, state in current.items()
        ]
        overview["consent_history"] = list(
            member_selectors.consent_history(member=member)[:RECENT_ROWS]
        )
    if shown["cards"]:
        overview["cards"] = list(member_selectors.cards_for(member=member))
    if shown["tier"]:
        progress = tier_progress(member=member)
        threshold = progress["next_tier_threshold"]
        if threshold:
            progress["percent"] = min(100, progress["qualifying_points"] * 100 // threshold)
        overview["tier"] = progress
        overview["tier_benefits"] = member.tier.benefits if member.tier_id else ""
    if shown["tier_history"]:
        overview["tier_history"] = list(
            member_selectors.tier_history_for(member=member)[:RECENT_ROWS]
        )
    if shown["points"]:
        overview["lots"] = list(
            ledger_selectors.lots_expiring_soon(member=member, days=EXPIRING_SOON_DAYS)[
                :RECENT_ROWS
            ]
        )
        overview["pending"] = list(ledger_selectors.pending_for(member=member)[:RECENT_ROWS])
        overview["expiring_days"] = EXPIRING_SOON_DAYS
    return overview


def _page(rows, number) -> object:
    # A member's own history is small enough to count (one indexed count per page view).
    return Paginator(rows, PAGE_SIZE).get_page(number)


def ledger_page(*, member: Member, number) -> object:
    """The member's entries, 25 a page, newest first; each earn says which rules gave it (the
    engine's explanation is stored on the entry itself)."""
    return _page(ledger_selectors.entries_for(member=member), number)


def purchases_page(*, member: Member, number) -> object:
    """Purchases with their lines, returns and the points they earned and gave back."""
    return _page(
        ledger_selectors.purchases_for(member=member).select_related("points_record"), number
    )


def redemptions_page(*, member: Member, number) -> object:
    return _page(reward_selectors.redemptions_for(member=member), number)


def messages_page(*, member: Member, number) -> object:
    return _page(campaign_selectors.messages_for(member=member), number)


def audit_page(*, member: Member, number) -> object:
    page = _page(member_selectors.audit_trail_for(member=member), number)
    for entry in page.object_list:
        entry.label = audit_action_label(entry.action)
    return page


def engagement(*, member: Member, shown: dict) -> dict:
    return {
        "challenges": campaign_selectors.challenges_for(member=member),
        "badges": list(campaign_selectors.badges_for(member=member)) if shown["badges"] else None,
    }


# --- search ---


def search_page(*, term: str, number: int, shown: dict) -> tuple[list[dict], bool]:
    """One page of the members ``term`` finds, and whether there is a next page.

    No count: a name prefix can match a good part of a million members, so the page reads one
    row more than it shows to know whether to offer "next".
    """
    start = (number - 1) * PAGE_SIZE
    members = Member.objects.select_related("tier")
    if shown["points"]:
        members = members.select_related("account")
    found = member_selectors.member_search_rows(
        term=term, offset=start, limit=PAGE_SIZE + 1, members=members
    )
    has_next = len(found) > PAGE_SIZE
    found = found[:PAGE_SIZE]
    cards: dict[int, str] = {}
    if shown["cards"] and found:
        # The newest active card of each member on the page, in one query.
        for card in (
            Card.objects.filter(member__in=found, status=Card.Status.ACTIVE)
            .order_by("member_id", "-issued_at", "-id")
            .only("member_id", "number")
        ):
            cards.setdefault(card.member_id, card.number)
    rows = [
        {
            "member": member,
            "title": member_title(member, personal=True),
            "card": cards.get(member.pk),
            "balance": _balance(member) if shown["points"] else None,
        }
        for member in found
    ]
    return rows, has_next


def _balance(member: Member) -> int:
    # The account came with the member (select_related); a member without one has 0.
    try:
        return member.account.balance
    except Member.account.RelatedObjectDoesNotExist:
        return 0
