"""Staff roles as Django groups, each with the least permissions that do its job.

`manage.py setup_roles` makes the groups hold exactly these permissions (it also removes any that
were added by hand), so the code is the record of who may do what. When a later feature adds a
model or a permission, it adds it here for the roles that need it.
"""

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
        "members.view_member",
    },
    CUSTOMER_SERVICE: {
        "members.view_member",
        "members.change_member",
        "members.view_card",
        "members.change_card",
    },
    FINANCE: set(),
    ADMINISTRATOR: {
        "auth.view_user",
        "auth.add_user",
        "auth.change_user",
        "auth.view_group",
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
    """Create the four groups and give each exactly its permissions. Safe to run again."""
    counts = {}
    for role in ROLE_PERMISSIONS:
        group, _created = Group.objects.get_or_create(name=role)
        permissions = role_permissions(role)
        group.permissions.set(permissions)
        counts[role] = len(set(permissions))
    return counts
