"""A campaign's lifecycle: draft → scheduled → active ⇄ paused → ended → archived.

Every status change is one service here, and all of them go through `_transition`: one
transaction, the campaign row locked (``SELECT ... FOR UPDATE``), the move checked against
`TRANSITIONS` (the one table of what may follow what), a `CampaignTransition` row with the actor
(None: the scheduler) and the reason. A refused move raises `CampaignTransitionInvalid`
(``campaign_transition_invalid``), so two staff members pressing "pause" at once get one pause
and one refusal, never two rows.

Editing (`campaign_update`), decided here:
- a draft is edited freely;
- a scheduled campaign is not edited (its checks were passed as it is): move it back to draft
  (`campaign_unschedule`), edit, schedule again;
- an active or paused campaign may change only its end (to a moment still to come, or none)
  and raise its budgets and member cap (a cap it has cannot be removed or lowered, nor its
  period changed: what members were given under it would stop adding up);
- name and description may be edited in any status.
Changes to a campaign that is no longer a draft are recorded as a transition from its status to
the same status, naming the fields in the reason.

`campaigns_advance` (the beat task ``campaigns.campaigns_advance``, every minute) starts the
scheduled campaigns whose start has come and ends the active or paused ones whose end has
passed. It claims each row with ``SELECT ... FOR UPDATE SKIP LOCKED`` and re-checks its status
under the lock, so two runs at once start each campaign once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from campaigns import segments
from campaigns.errors import CampaignNotEditable, CampaignNotReady, CampaignTransitionInvalid
from campaigns.models import Campaign, CampaignMemberUsage, CampaignTransition, MessageTemplate
from campaigns.services import sends
from campaigns.services.budgets import money_in_points
from campaigns.services.segments import segment_snapshot_take
from loyalty_site.errors import DomainError
from members import config_cache

logger = logging.getLogger(__name__)

S = Campaign.Status

# action → (the statuses it may leave, the status it reaches). The one table of moves.
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "schedule": (frozenset({S.DRAFT}), S.SCHEDULED),
    "unschedule": (frozenset({S.SCHEDULED}), S.DRAFT),
    "activate": (frozenset({S.SCHEDULED}), S.ACTIVE),
    "pause": (frozenset({S.ACTIVE}), S.PAUSED),
    "resume": (frozenset({S.PAUSED}), S.ACTIVE),
    "end": (frozenset({S.ACTIVE, S.PAUSED}), S.ENDED),
    "archive": (frozenset({S.DRAFT, S.ENDED}), S.ARCHIVED),
}

ACTION_LABELS = {
    "schedule": _("Schedule"),
    "unschedule": _("Back to draft"),
    "activate": _("Start now"),
    "pause": _("Pause"),
    "resume": _("Resume"),
    "end": _("End"),
    "archive": _("Archive"),
}

# A start this far in the past still counts as "now": the form was filled a moment ago.
START_SLACK = timedelta(minutes=5)

FREE_FIELDS = frozenset({"name", "description"})
DRAFT_FIELDS = FREE_FIELDS | {
    "kind",
    "segment",
    "starts_at",
    "ends_at",
    "control_basis_points",
    "frequency_capped",
    "budget_points",
    "budget_money",
    "member_cap_points",
    "member_cap_period",
}
RUNNING_FIELDS = FREE_FIELDS | {"ends_at", "budget_points", "budget_money", "member_cap_points"}
_RAISE_ONLY = ("budget_points", "budget_money", "member_cap_points")


def actions_allowed(campaign: Campaign) -> list[str]:
    """The moves the campaign's status allows now, for buttons."""
    return [action for action, (sources, _to) in TRANSITIONS.items() if campaign.status in sources]


def _message_templates(campaign: Campaign) -> list:
    """The campaign's message templates (campaigns.services.sends renders and sends them)."""
    return list(MessageTemplate.objects.filter(campaign=campaign))


def campaign_schedule_problems(campaign: Campaign, *, now: datetime | None = None) -> dict:
    """Why the campaign cannot be scheduled, by field ({} when it can): for forms and pages."""
    now = now or timezone.now()
    problems: dict[str, str] = {}
    if campaign.starts_at is None:
        problems["starts_at"] = gettext("Give a start.")
    elif campaign.starts_at < now - START_SLACK:
        problems["starts_at"] = gettext("The start must be now or in the future.")
    if campaign.ends_at is not None:
        if campaign.ends_at <= now:
            problems["ends_at"] = gettext("The end must be in the future.")
        elif campaign.starts_at is not None and campaign.ends_at <= campaign.starts_at:
            problems["ends_at"] = gettext("The end must be after the start.")
    if campaign.segment_id is not None:
        try:
            segments.validate(campaign.segment.definition)
        except ValidationError as error:
            problems["segment"] = " ".join(error.messages)
    if campaign.kind == Campaign.Kind.EARNING and not campaign.rules.filter(active=True).exists():
        problems["rules"] = gettext("An earning campaign needs at least one active earning rule.")
    if campaign.kind == Campaign.Kind.MESSAGE and not _message_templates(campaign):
        problems["templates"] = gettext("A message campaign needs a message template.")
    return problems


def _forget_rules_on_commit() -> None:
    # A campaign's rules follow its status: this process sees the change at once, the others
    # within LOYALTY_CONFIG_CACHE_SECONDS.
    transaction.on_commit(lambda: config_cache.forget("earning-rules"))


def _refuse(campaign: Campaign, action: str) -> CampaignTransitionInvalid:
    return CampaignTransitionInvalid(
        gettext("A campaign that is %(status)s cannot take the step “%(action)s”.")
        % {"status": campaign.get_status_display().lower(), "action": ACTION_LABELS[action]}
    )


def _transition(
    campaign: Campaign,
    action: str,
    *,
    actor,
    reason: str,
    now: datetime,
    prepare=None,
) -> Campaign:
    with transaction.atomic():
        locked = (
            Campaign.objects.select_for_update(of=("self",))
            .select_related("segment")
            .get(pk=campaign.pk)
        )
        sources, target = TRANSITIONS[action]
        if locked.status not in sources:
            raise _refuse(locked, action)
        changed = ["status", "updated_at"]
        if prepare is not None:
            changed += prepare(locked)
        before = locked.status
        locked.status = target
        locked.save(update_fields=changed)
        CampaignTransition.objects.create(
            campaign=locked,
            from_status=before,
            to_status=target,
            at=now,
            actor=actor,
            reason=(reason or "")[:255],
        )
        _forget_rules_on_commit()
    return locked


def campaign_schedule(
    *, campaign: Campaign, actor, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Draft → scheduled, once the campaign passes `campaign_schedule_problems`.

    The point value the money budget counts at is frozen here (LOYALTY_POINT_VALUE now).
    """
    now = now or timezone.now()

    def prepare(locked: Campaign) -> list[str]:
        problems = campaign_schedule_problems(locked, now=now)
        if problems:
            raise CampaignNotReady(fields=problems)
        locked.point_value = settings.LOYALTY_POINT_VALUE
        locked.budget_money_points = money_in_points(locked.budget_money, locked.point_value)
        return ["point_value", "budget_money_points"]

    return _transition(campaign, "schedule", actor=actor, reason=reason, now=now, prepare=prepare)


def campaign_unschedule(
    *, campaign: Campaign, actor, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Scheduled → draft, to edit it again."""
    return _transition(
        campaign, "unschedule", actor=actor, reason=reason, now=now or timezone.now()
    )


def campaign_activate(
    *, campaign: Campaign, actor=None, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Scheduled → active: freeze the audience, start the campaign's rules or its send.

    By hand before its start, the campaign starts now (its start moves to now). The audience is
    the segment's members at this moment without the programme's holdout, frozen in one
    statement; the control group is computed from it with the campaign's salt.
    """
    now = now or timezone.now()

    def prepare(locked: Campaign) -> list[str]:
        changed = []
        if locked.starts_at is None or locked.starts_at > now:
            locked.starts_at = now
            changed.append("starts_at")
        definition = (locked.segment.definition if locked.segment else None) or {"all": []}
        try:
            locked.audience = segment_snapshot_take(
                definition=definition, segment=locked.segment, now=now, without_holdout=True
            )
        except ValidationError as error:
            raise CampaignNotReady(fields={"segment": " ".join(error.messages)}) from error
        return [*changed, "audience"]

    activated = _transition(
        campaign, "activate", actor=actor, reason=reason, now=now, prepare=prepare
    )
    _after_activation(activated)
    return activated


def _after_activation(campaign: Campaign) -> None:
    """What a started (or resumed) campaign sets going once that is committed: its send.

    An earning campaign needs nothing (its rules read its status). A campaign with message
    templates plans its messages and hands them to the workers after commit; planning again on
    a resume plans nothing twice (a unique key) and sends what a pause held back.
    """
    if not MessageTemplate.objects.filter(campaign=campaign).exists():
        return
    transaction.on_commit(lambda: sends.campaign_send_start(campaign=campaign))


def campaign_pause(
    *, campaign: Campaign, actor, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Active → paused: its rules stop giving points (budgeted ones at once, see budgets)."""
    return _transition(campaign, "pause", actor=actor, reason=reason, now=now or timezone.now())


def campaign_resume(
    *, campaign: Campaign, actor, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Paused → active, unless its end has passed (the scheduler ends it instead)."""
    now = now or timezone.now()

    def prepare(locked: Campaign) -> list[str]:
        if locked.ends_at is not None and locked.ends_at <= now:
            raise CampaignTransitionInvalid(
                gettext("The campaign's end has passed: it can only end.")
            )
        return []

    resumed = _transition(campaign, "resume", actor=actor, reason=reason, now=now, prepare=prepare)
    _after_activation(resumed)
    return resumed


def campaign_end(
    *, campaign: Campaign, actor=None, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Active or paused → ended. Ending early moves the end to now, so results use the real
    window."""
    now = now or timezone.now()

    def prepare(locked: Campaign) -> list[str]:
        early = locked.ends_at is None or locked.ends_at > now
        # (A campaign started this very moment keeps its end: an end equal to the start would
        # break the campaign_ends_after_start constraint.)
        if early and (locked.starts_at is None or locked.starts_at < now):
            locked.ends_at = now
            return ["ends_at"]
        return []

    return _transition(campaign, "end", actor=actor, reason=reason, now=now, prepare=prepare)


def campaign_archive(
    *, campaign: Campaign, actor, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Ended (or a draft given up) → archived: kept with its control group and results."""
    return _transition(campaign, "archive", actor=actor, reason=reason, now=now or timezone.now())


def campaign_update(
    *, campaign: Campaign, actor, changes: dict, reason: str = "", now: datetime | None = None
) -> Campaign:
    """Change fields of a campaign, as far as its status allows (see the module docstring)."""
    now = now or timezone.now()
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status == S.DRAFT:
            allowed = DRAFT_FIELDS
        elif locked.status in (S.ACTIVE, S.PAUSED):
            allowed = RUNNING_FIELDS
        else:
            allowed = FREE_FIELDS
        unknown = set(changes) - DRAFT_FIELDS
        if unknown:
            raise DomainError(
                code="invalid_field", fields={name: gettext("Unknown field.") for name in unknown}
            )
        changed = {name: value for name, value in changes.items() if getattr(locked, name) != value}
        refused = {
            name: gettext("Not while the campaign is %(status)s.")
            % {"status": locked.get_status_display().lower()}
            for name in changed
            if name not in allowed
        }
        if locked.status in (S.ACTIVE, S.PAUSED):
            refused.update(_running_refusals(locked, changed, now))
        if refused:
            raise CampaignNotEditable(fields=refused)
        if not changed:
            return locked
        for name, value in changed.items():
            setattr(locked, name, value)
        if locked.starts_at and locked.ends_at and locked.ends_at <= locked.starts_at:
            raise CampaignNotEditable(
                fields={"ends_at": gettext("The end must be after the start.")}
            )
        saved = [*changed, "updated_at"]
        if "budget_money" in changed and locked.status != S.DRAFT:
            locked.budget_money_points = money_in_points(locked.budget_money, locked.point_value)
            saved.append("budget_money_points")
        locked.full_clean(exclude=["salt"], validate_unique=False)
        locked.save(update_fields=saved)
        if "member_cap_points" in changed and locked.status != S.DRAFT:
            # The usage rows carry the cap their CHECK constraint holds them to.
            CampaignMemberUsage.objects.filter(campaign=locked).update(cap=locked.member_cap_points)
        if locked.status != S.DRAFT:
            text = gettext("Changed: %(fields)s.") % {"fields": ", ".join(sorted(changed))}
            CampaignTransition.objects.create(
                campaign=locked,
                from_status=locked.status,
                to_status=locked.status,
                at=now,
                actor=actor,
                reason=f"{text} {reason}".strip()[:255],
            )
        _forget_rules_on_commit()
    return locked


def _running_refusals(campaign: Campaign, changed: dict, now: datetime) -> dict:
    refused = {}
    if "ends_at" in changed and changed["ends_at"] is not None and changed["ends_at"] <= now:
        refused["ends_at"] = gettext("The new end must be in the future; to stop now, end it.")
    for name in _RAISE_ONLY:
        if name not in changed:
            continue
        old, new = getattr(campaign, name), changed[name]
        if old is None:
            refused[name] = gettext("A running campaign cannot gain a limit it did not have.")
        elif new is None or new < old:
            refused[name] = gettext("A running campaign's limit can only be raised.")
    return refused


def _advance(queryset, action, *, now: datetime, reason: str) -> int:
    done = 0
    for pk in list(queryset.order_by("pk").values_list("pk", flat=True)[:500]):
        try:
            with transaction.atomic():
                # Claim: a row another run holds is skipped, and the status is re-checked.
                claimed = (
                    queryset.select_for_update(skip_locked=True, of=("self",)).filter(pk=pk).first()
                )
                if claimed is None:
                    continue
                action(campaign=claimed, actor=None, reason=reason, now=now)
                done += 1
        except (DomainError, ValidationError):
            # Left as it is and logged; the next run tries again (a start whose segment broke).
            logger.exception("Campaign %s could not %s", pk, action.__name__)
    return done


def campaigns_advance(*, now: datetime | None = None) -> dict[str, int]:
    """Start campaigns whose start has come, end those whose end has passed; safe to rerun.

    Starts come first, so a campaign whose whole period went by while the scheduler was down
    starts (its audience frozen) and ends in the same run.
    """
    now = now or timezone.now()
    started = _advance(
        Campaign.objects.filter(status=S.SCHEDULED, starts_at__lte=now),
        campaign_activate,
        now=now,
        reason=gettext("Scheduled start"),
    )
    ended = _advance(
        Campaign.objects.filter(status__in=[S.ACTIVE, S.PAUSED], ends_at__lte=now),
        campaign_end,
        now=now,
        reason=gettext("Scheduled end"),
    )
    return {"started": started, "ended": ended}
