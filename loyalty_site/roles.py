"""Staff roles as Django groups, each with the least permissions that do its job.

`manage.py setup_roles` makes the groups hold exactly these permissions (it also removes any that
were added by hand, and every permission given to a user directly rather than through a group),
so the code is the record of who may do what. When a later feature adds a
model or a permission, it adds it here for the roles that need it.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils.translation import gettext_lazy as _

MARKETING = "Marketing"
CUSTOMER_SERVICE = "Customer service"
FINANCE = "Finance"
ADMINISTRATOR = "Administrator"

ROLE_LABELS = {
    MARKETING: _("Marketing"),
    CUSTOMER_SERVICE: _("Customer service"),
    FINANCE: _("Finance"),
    ADMINISTRATOR: _("Administrator"),
}

# "app_label.codename" for each role. The Administrator role gets every permission of the
# project's apps and of the operational apps below, on top of its own list.
ROLE_PERMISSIONS: dict[str, set[str]] = {
    MARKETING: {
        # rewards: the catalogue and its voucher pools
        "rewards.view_reward",
        "rewards.add_reward",
        "rewards.change_reward",
        "rewards.delete_reward",
        "rewards.view_rewardtierprice",
        "rewards.add_rewardtierprice",
        "rewards.change_rewardtierprice",
        "rewards.delete_rewardtierprice",
        "rewards.view_vouchercode",
        "rewards.add_vouchercode",
        "rewards.change_vouchercode",
        "rewards.delete_vouchercode",
        "rewards.view_redemption",
        "members.view_member",
        # members: the tier ladder and who moved (no personal-data changes)
        "members.view_tier",
        "members.view_tierhistory",
        # campaigns: earning rules (and their simulator), engagement kinds, challenges, badges
        *(
            f"campaigns.{action}_{model}"
            for action in ("view", "add", "change", "delete")
            for model in ("earningrule", "engagementkind", "challenge", "badge")
        ),
        "campaigns.simulate_earningrule",
        "campaigns.view_earningaward",
        "campaigns.view_engagementevent",
        "campaigns.view_challengeprogress",
        "campaigns.view_memberbadge",
        # campaigns: personalised offers and campaign results
        *(f"campaigns.{action}_campaignoffer" for action in ("view", "add", "change", "delete")),
        "campaigns.view_campaignresult",
        # campaigns: message templates and frequency caps; the planned messages, to read
        *(
            f"campaigns.{action}_{model}"
            for action in ("view", "add", "change", "delete")
            for model in ("messagetemplate", "frequencycap")
        ),
        "campaigns.view_campaignmessage",
        # campaigns: segments, and freezing one into a snapshot
        *(f"campaigns.{action}_segment" for action in ("view", "add", "change", "delete")),
        "campaigns.view_segmentsnapshot",
        "campaigns.add_segmentsnapshot",
        # campaigns: campaigns and their moves, per-member budget usage (issue 13, lifecycle)
        *(f"campaigns.{action}_campaign" for action in ("view", "add", "change", "delete")),
        "campaigns.view_campaigntransition",
        "campaigns.view_campaignmemberusage",
    },
    CUSTOMER_SERVICE: {
        # rewards: see the catalogue and codes; cancel reservations, move shipments on
        "rewards.view_reward",
        "rewards.view_vouchercode",
        "rewards.view_redemption",
        "rewards.change_redemption",
        "rewards.view_fulfilment",
        "rewards.change_fulfilment",
        "members.view_member",
        "members.change_member",
        "members.view_card",
        "members.change_card",
        # members: consents, tiers, enrolment and access/erasure requests
        "members.add_member",
        "members.view_consent",
        "members.view_tier",
        "members.view_tierhistory",
        "members.export_member",
        "members.erase_member",
        # the member page: record a consent the member gives or withdraws on the phone, and
        # read the member's audit trail (who changed what about them, and why)
        "members.add_consent",
        "members.view_auditentry",
        # ledger: see a member's points story; request adjustments (approved by someone else)
        "ledger.view_account",
        "ledger.view_entry",
        "ledger.view_hold",
        "ledger.view_pendingearn",
        "ledger.view_purchase",
        "ledger.view_adjustmentrequest",
        "ledger.add_adjustmentrequest",
        # campaigns: the abuse review queue and engagement moderation; why points were given
        "campaigns.view_purchasereview",
        "campaigns.change_purchasereview",
        "campaigns.view_engagementevent",
        "campaigns.change_engagementevent",
        "campaigns.view_earningaward",
        "campaigns.view_purchasepoints",
        "campaigns.view_referral",
        "campaigns.view_referralcode",
        "campaigns.view_challengeprogress",
        "campaigns.view_memberbadge",
        # the messages a member was sent or spared, and why
        "campaigns.view_campaignmessage",
    },
    FINANCE: {
        # ledger: balances, entries and lots for the liability; Finance approves large staff
        # adjustments that Customer service requests (separation of duties: the role that
        # requests is not the role that approves, so no one needs both).
        "ledger.view_account",
        "ledger.view_entry",
        "ledger.view_lot",
        "ledger.view_purchase",
        "ledger.view_adjustmentrequest",
        "ledger.approve_adjustmentrequest",
        "rewards.view_redemption",
        # finance's page (issue 15): reports and exports, period close, the value of a point
        # and the expected redemption rate, each a new dated row (nothing is changed in place).
        "ledger.view_finance",
        "ledger.close_period",
        "ledger.view_periodclose",
        "ledger.view_pointvalue",
        "ledger.add_pointvalue",
        "ledger.view_redemptionestimate",
        "ledger.add_redemptionestimate",
        # the audit log page (/audit/): auditors read who changed what (member ids, no
        # personal data)
        "members.view_auditentry",
        "auditlog.view_logentry",
    },
    ADMINISTRATOR: {
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
        # the configuration change log (read only: a log is not edited)
        "auditlog.view_logentry",
    },
}

ADMINISTRATOR_APPS = {
    "members",
    "ledger",
    "rewards",
    "campaigns",
    "django_celery_beat",
    "axes",
    "rest_framework_api_key",
    # API channels and their keys, webhook subscriptions and deliveries
    "loyalty_site",
}


class UnknownPermission(Exception):
    pass


def _resolve(names: set[str]) -> list[Permission]:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            codename__in={codename for _app, codename in wanted}
        )
    }
    missing = sorted(f"{app}.{code}" for app, code in wanted - set(found))
    if missing:
        raise UnknownPermission(f"unknown permissions: {', '.join(missing)}")
    return [found[key] for key in wanted]


def role_permissions(role: str) -> list[Permission]:
    permissions = _resolve(ROLE_PERMISSIONS[role])
    if role == ADMINISTRATOR:
        permissions += list(
            Permission.objects.filter(content_type__app_label__in=ADMINISTRATOR_APPS)
        )
    return permissions


@transaction.atomic
def roles_sync() -> dict[str, int]:
    """Create the four groups and give each exactly its permissions, and take away every
    permission given to a user directly, so that a user may do what their roles allow and no
    more (superusers are not limited by permissions either way). Safe to run again."""
    counts = {}
    for role in ROLE_PERMISSIONS:
        group, _created = Group.objects.get_or_create(name=role)
        permissions = role_permissions(role)
        group.permissions.set(permissions)
        counts[role] = len(set(permissions))
    get_user_model().user_permissions.through.objects.all().delete()
    return counts
