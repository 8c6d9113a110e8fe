"""Rendering a campaign's message for one member, in the member's language.

Marketing writes templates in Django's template language, but they run in an engine of their
own: no loaders (no ``{% include %}`` or ``{% extends %}`` of files), no ``{% load %}``able
libraries, and of the built-in tags only those that shape text (``if``, ``for``, ``with``,
``firstof``, ``cycle``, ``filter``, ``spaceless``, ``comment``, ``verbatim``,
``templatetag``); ``debug``, ``url``, ``csrf_token`` and the rest are unknown tags. The context
holds plain values only (no model instances), so a template cannot walk from a member to
anything else. Text (subject, SMS, push, the e-mail's text part) is not escaped; the e-mail's
HTML part is.

A member's language is their `locale` when the programme has that language, else
settings.LANGUAGE_CODE; a campaign without a template in that language falls back to the
default language's template, then to any of its templates on that channel. Dates and numbers
are formatted in the chosen language and the programme's time zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import (
    Context,
    Engine,
    Library,
    Template,
    TemplateSyntaxError,
    defaultfilters,
    defaulttags,
)
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from campaigns.errors import MessageTemplateMissing
from campaigns.models import Campaign, MessageTemplate
from campaigns.offers import member_offers
from ledger import selectors as ledger_selectors
from members.models import Member

_TEXT_TAGS = (
    "comment",
    "cycle",
    "filter",
    "firstof",
    "for",
    "if",
    "spaceless",
    "templatetag",
    "verbatim",
    "with",
)
_tags = Library()
for _name in _TEXT_TAGS:
    _tags.tag(_name, defaulttags.register.tags[_name])

# The variables a template may use (the help text of MessageTemplate.body lists them).
VARIABLES = ("first_name", "balance", "tier", "points_expiring", "points_expiring_at")


class _MessageEngine(Engine):
    default_builtins: list[str] = []

    def get_template_builtins(self, builtins):
        return [_tags, defaultfilters.register]


_TEXT_ENGINE = _MessageEngine(loaders=[], libraries={}, autoescape=False)
_HTML_ENGINE = _MessageEngine(loaders=[], libraries={}, autoescape=True)


@dataclass(frozen=True)
class RenderedMessage:
    channel: str
    language: str
    subject: str
    body: str
    html_body: str = ""


def template_validate(template: MessageTemplate) -> None:
    """Refuse a template that does not compile (on save in the admin)."""
    errors = {}
    for field, engine in (
        ("subject", _TEXT_ENGINE),
        ("body", _TEXT_ENGINE),
        ("html_body", _HTML_ENGINE),
    ):
        try:
            engine.from_string(getattr(template, field) or "")
        except TemplateSyntaxError as exc:
            errors[field] = ValidationError(
                _("This template does not compile: %(error)s"),
                code="invalid_template",
                params={"error": exc},
            )
    if errors:
        raise ValidationError(errors)


def language_of(member: Member) -> str:
    """The member's language if the programme speaks it, else the programme's default."""
    languages = {code for code, _label in settings.LANGUAGES}
    locale = (member.locale or "").replace("_", "-").lower()
    for candidate in (locale, locale.split("-")[0]):
        if candidate in languages:
            return candidate
    return settings.LANGUAGE_CODE


class CampaignTemplates:
    """A campaign's templates, compiled once, for rendering many members (one chunk)."""

    def __init__(self, campaign: Campaign):
        self.campaign = campaign
        self._templates: dict[tuple[str, str], MessageTemplate] = {
            (t.channel, t.language): t for t in MessageTemplate.objects.filter(campaign=campaign)
        }
        self._compiled: dict[tuple[int, str], Template] = {}

    def channels(self) -> list[str]:
        return sorted({channel for channel, _language in self._templates})

    def choose(self, channel: str, language: str) -> MessageTemplate:
        for candidate in (language, settings.LANGUAGE_CODE):
            if (channel, candidate) in self._templates:
                return self._templates[(channel, candidate)]
        others = sorted(lang for ch, lang in self._templates if ch == channel)
        if not others:
            raise MessageTemplateMissing()
        return self._templates[(channel, others[0])]

    def _compile(self, template: MessageTemplate, field: str) -> Template:
        key = (template.pk, field)
        if key not in self._compiled:
            engine = _HTML_ENGINE if field == "html_body" else _TEXT_ENGINE
            self._compiled[key] = engine.from_string(getattr(template, field) or "")
        return self._compiled[key]

    def render(
        self,
        *,
        channel: str,
        member: Member,
        language: str | None = None,
        now: datetime | None = None,
    ) -> RenderedMessage:
        language = language or language_of(member)
        template = self.choose(channel, language)
        values = member_variables(member=member, now=now)
        # Dates, numbers and any translated filter output follow the template's language.
        with translation.override(template.language):
            # The member's offers cost several queries: asked only by a template that names
            # them (at a million members, most messages do not).
            if any(
                "offer" in (getattr(template, f) or "") for f in ("subject", "body", "html_body")
            ):
                values.update(_offer_variables(member=member, now=now))
            context = Context(values, autoescape=False)
            subject = self._compile(template, "subject").render(context)
            body = self._compile(template, "body").render(context)
            html_body = ""
            if channel == "email" and template.html_body:
                html_body = self._compile(template, "html_body").render(Context(values))
        return RenderedMessage(
            channel=channel,
            language=template.language,
            # A subject is one line: a newline in it would start a new mail header.
            subject=" ".join(subject.split()),
            body=body.strip(),
            html_body=html_body,
        )


def member_variables(*, member: Member, now: datetime | None = None) -> dict:
    """The values a template sees for this member: plain strings, numbers and dates only."""
    expiring = ledger_selectors.points_expiring_soon(
        days=settings.LOYALTY_MESSAGE_EXPIRING_DAYS, member=member, now=now
    ).first()
    tier = member.tier.name if member.tier_id else ""
    return {
        "first_name": member.first_name,
        "balance": ledger_selectors.balance_summary(member=member)["balance"],
        "tier": tier,
        "points_expiring": expiring["points"] if expiring else 0,
        "points_expiring_at": expiring["first_expiry"] if expiring else None,
    }


def _offer_variables(*, member: Member, now: datetime | None = None) -> dict:
    """The member's personalised offer now (of a running offer campaign; the first by campaign
    when several), in the active language: `offer` (the reward's name, "" when none) and
    `offer_points` (the member's price)."""
    offers = member_offers(member=member, at=now)
    if not offers:
        return {"offer": "", "offer_points": None}
    first = offers[0]
    return {"offer": str(first.reward.name), "offer_points": getattr(first.reward, "cost", None)}


def message_preview(
    *, campaign: Campaign, channel: str, member: Member, language: str | None = None
) -> RenderedMessage:
    """The message `member` would get on `channel` (for the builder page and the admin).

    `language` overrides the member's own; the template falls back as a send would.
    """
    return CampaignTemplates(campaign).render(channel=channel, member=member, language=language)
