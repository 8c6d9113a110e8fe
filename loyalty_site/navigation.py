"""The back office's navigation: each section shows only to staff whose role grants its permission.

Every page's sidebar (templates/base.html, through `context`) lists the sections by group; a
section is (title, description, url name, permission, group). A page added to the back office
adds its section here. The permission only hides the link: each view checks its own.
"""

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Section:
    title: str
    description: str
    url_name: str
    permission: str
    group: str = "admin"


GROUPS = {
    "service": _("Customer service"),
    "marketing": _("Marketing"),
    "finance": _("Finance"),
    "admin": _("Administration"),
}


SECTIONS = [
    # The member page (loyalty_site/member_views.py) holds the cards too: a card number in the
    # search box opens its member, where the card is blocked or replaced.
    Section(
        _("Members"),
        _("Find a member by name, e-mail, phone or card; see their story; block or replace cards."),
        "member-search",
        "members.view_member",
        "service",
    ),
    Section(
        _("Tiers"),
        _("The tier ladder: thresholds, windows, multipliers, benefits and grace periods."),
        "tiers",
        "members.view_tier",
        "marketing",
    ),
    Section(
        _("Points ledger"),
        _("Every points movement, searchable by member and reference; balances and lots."),
        "ledger-entries",
        "ledger.view_entry",
        "service",
    ),
    # One page, two roles: Finance approves large adjustments; customer service follows its own
    # requests there. An Administrator has both permissions and sees it once, under Finance.
    Section(
        _("Adjustment approvals"),
        _("Large staff adjustments waiting for a second person, with the member's balance."),
        "approvals",
        "ledger.approve_adjustmentrequest",
        "finance",
    ),
    Section(
        _("Finance"),
        _("The points liability as of any date, roll-forward, breakage, deferred revenue, close."),
        "finance",
        "ledger.view_finance",
        "finance",
    ),
    Section(
        _("Points adjustments"),
        _("Your points adjustments that wait for approval, and their decisions."),
        "approvals",
        "ledger.add_adjustmentrequest",
        "service",
    ),
    Section(
        _("Rewards"),
        _("The rewards catalogue: prices, stock, redemptions, voucher code pools."),
        "rewards",
        "rewards.view_reward",
        "marketing",
    ),
    Section(
        _("Redemptions"),
        _(
            "Search redemptions by member, reward, status, date or voucher code; cancel a "
            "reservation, send a voucher again."
        ),
        "redemptions",
        "rewards.view_redemption",
        "service",
    ),
    Section(
        _("Shipping"),
        _("Physical rewards to ship; mark them shipped or delivered; export the list."),
        "shipping",
        "rewards.view_fulfilment",
        "service",
    ),
    Section(
        _("Earning rules"),
        _(
            "Base rate, multipliers and bonuses with their conditions, caps and budgets; "
            "each rule's simulator replays past purchases before you launch it."
        ),
        "rules",
        "campaigns.view_earningrule",
        "marketing",
    ),
    Section(
        _("Engagement kinds"),
        _("Points for reviews, surveys, shares and referrals; limits and moderation."),
        "engagement-kinds",
        "campaigns.view_engagementkind",
        "marketing",
    ),
    Section(
        _("Segments"),
        _("Build saved filters over members with a live count; freeze them into snapshots."),
        "segment-list",
        "campaigns.view_segment",
        "marketing",
    ),
    Section(
        _("Campaigns"),
        _("Earning, offer and message campaigns: build, simulate, schedule, read the results."),
        "campaign-list",
        "campaigns.view_campaign",
        "marketing",
    ),
    Section(
        _("Challenges"),
        _("Goals over purchases or events, with points or a badge as reward."),
        "challenges",
        "campaigns.view_challenge",
        "marketing",
    ),
    Section(
        _("Purchase review queue"),
        _("Purchases the abuse guard stopped: approve to post the points, reject to void them."),
        "reviews",
        "campaigns.change_purchasereview",
        "service",
    ),
    Section(
        _("Engagement moderation"),
        _("Reviews and other events waiting for approval before their points are given."),
        "moderation",
        "campaigns.change_engagementevent",
        "service",
    ),
    Section(
        _("Audit log"),
        _("Every staff change with who, when, before and after, and why; export it as CSV."),
        "audit",
        "auditlog.view_logentry",
    ),
    # Every role that may run some export holds this one; the page offers each export only to
    # the roles its own permissions name (loyalty_site.exports).
    Section(
        _("Exports"),
        _("Members, ledger entries, redemptions, shipping list, campaign messages and results."),
        "exports",
        "rewards.view_redemption",
    ),
    Section(
        _("Scheduled jobs"),
        _("Pause or move the nightly jobs."),
        "admin:django_celery_beat_periodictask_changelist",
        "django_celery_beat.view_periodictask",
    ),
    Section(
        _("Staff and roles"),
        _("Add staff users and give them a role."),
        "admin:auth_user_changelist",
        "auth.view_user",
    ),
]


def sections_for(user) -> list[dict]:
    visible, shown = [], set()
    for section in SECTIONS:
        if not user.has_perm(section.permission):
            continue
        try:
            url = reverse(section.url_name)
        except NoReverseMatch:
            continue
        if url in shown:
            continue  # a page listed for two roles shows once, under the first
        shown.add(url)
        visible.append(
            {
                "title": section.title,
                "description": section.description,
                "url": url,
                "group": section.group,
            }
        )
    return visible


def groups_for(user) -> list[dict]:
    """The visible sections of `user`, grouped for the sidebar, in GROUPS' order."""
    sections = sections_for(user)
    return [
        {"title": title, "sections": [s for s in sections if s["group"] == key]}
        for key, title in GROUPS.items()
        if any(s["group"] == key for s in sections)
    ]


def context(request) -> dict:
    """Template context for every page: the sidebar and the member search box."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    search_url = None
    if user.has_perm("members.view_member"):
        try:
            search_url = reverse("member-search")
        except NoReverseMatch:
            search_url = None
    return {"nav_groups": groups_for(user), "member_search_url": search_url}
