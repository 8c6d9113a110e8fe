"""The landing page's links: each section shows only to staff whose role grants its permission.

Later issues add their pages here; a section is (title, description, url name, permission).
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


SECTIONS = [
    Section(
        _("Members"),
        _("Find a member by name, e-mail, phone or card; see their story."),
        "admin:members_member_changelist",
        "members.view_member",
    ),
    Section(
        _("Cards"),
        _("Look up, block or replace loyalty cards."),
        "admin:members_card_changelist",
        "members.view_card",
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
    visible = []
    for section in SECTIONS:
        if not user.has_perm(section.permission):
            continue
        try:
            url = reverse(section.url_name)
        except NoReverseMatch:
            continue
        visible.append({"title": section.title, "description": section.description, "url": url})
    return visible
