"""Saving an earning rule from the back office: the one place the rule editor writes.

Lock order (campaigns.services.locks): the rule row, then its campaign rows by id; the purchase
path takes budgeted rules before campaigns too, and the campaign lifecycle takes the campaign
alone, so none of them waits on the other in a circle.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext

from campaigns.errors import CampaignNotEditable
from campaigns.models import Campaign, EarningRule, Segment
from loyalty_site.errors import Conflict, DomainError
from members import config_cache
from members.models import Tier
from members.services import audit_record

# Written by the purchases (the spent budget) or once (the creation time), never by the editor.
_NOT_EDITED = {"id", "budget_spent", "created_at"}


def rule_editable(rule: EarningRule) -> bool:
    """A rule may be changed unless it belongs to a campaign that is no longer a draft (the
    campaign's page refuses its rules the same way: what was scheduled is what runs)."""
    return rule.campaign_id is None or rule.campaign.status == Campaign.Status.DRAFT


def _campaigns_lock_draft(campaign_ids) -> None:
    """Lock the campaigns by id and refuse unless each is a draft (what was scheduled runs)."""
    campaign_ids = sorted(set(campaign_ids) - {None})
    statuses = dict(
        Campaign.objects.select_for_update()
        .filter(pk__in=campaign_ids)
        .order_by("pk")
        .values_list("pk", "status")
    )
    if any(statuses.get(pk) != Campaign.Status.DRAFT for pk in campaign_ids):
        raise CampaignNotEditable(
            gettext("The rules of a campaign that is no longer a draft cannot be changed.")
        )


def rule_save(
    *,
    rule: EarningRule,
    actor,
    reason: str = "",
    tiers: Iterable[Tier] | None = None,
    segments: Iterable[Segment] | None = None,
) -> EarningRule:
    """Create `rule` (no pk) or store its changes, with its tiers and segments when given.

    Refused (CampaignNotEditable) when the rule's campaign, before or after the change, is not
    a draft; a budget below the points already spent is refused on its field. The spent budget
    is the stored one, whatever the instance holds: purchases move it while the page is open.
    Records an audit entry naming the changed fields; an edit that changes nothing writes
    nothing. The earn path sees the change at once in this process, within
    LOYALTY_CONFIG_CACHE_SECONDS in the others.
    """
    with transaction.atomic():
        saved = None
        if rule.pk is not None:
            saved = EarningRule.objects.select_for_update().get(pk=rule.pk)
        _campaigns_lock_draft({saved.campaign_id if saved else None, rule.campaign_id})
        if saved is not None:
            rule.budget_spent = saved.budget_spent
            rule.created_at = saved.created_at
        if rule.budget_points is not None and rule.budget_points < rule.budget_spent:
            raise DomainError(
                code="invalid_field",
                fields={
                    "budget_points": gettext(
                        "The budget cannot be less than the %(spent)s points already spent."
                    )
                    % {"spent": rule.budget_spent}
                },
            )
        try:
            rule.full_clean(validate_unique=False)
        except ValidationError as invalid:
            raise DomainError(code="invalid_field", fields=invalid.message_dict) from None

        fields = [f for f in EarningRule._meta.concrete_fields if f.name not in _NOT_EDITED]
        names = [f.name for f in fields]
        if saved is None:
            changed = set(names)
        else:
            changed = {
                f.name for f in fields if getattr(saved, f.attname) != getattr(rule, f.attname)
            }
        relations = {"tiers": tiers, "segments": segments}
        for name, chosen in list(relations.items()):
            if chosen is None:
                continue
            chosen = {item.pk for item in chosen}
            relations[name] = chosen
            before = set(getattr(saved, name).values_list("pk", flat=True)) if saved else set()
            if chosen != before:
                changed.add(name)
        if saved is not None and not changed:
            return rule

        if saved is None:
            rule.save()
        else:
            rule.save(update_fields=names)
        for name, chosen in relations.items():
            if chosen is not None:
                getattr(rule, name).set(chosen)
        audit_record(
            actor=actor,
            action="earning_rule_create" if saved is None else "earning_rule_change",
            reason=reason,
            details={"rule_id": rule.pk, "fields": sorted(changed)},
        )
        transaction.on_commit(lambda: config_cache.forget("earning-rules"))
    return rule


def rule_delete(*, rule: EarningRule, actor, reason: str = "") -> None:
    """Delete `rule`: refused (CampaignNotEditable) when its campaign is not a draft, and
    (rule_in_use) once it has given points, whose awards keep it (make it inactive instead).
    Records an audit entry; the earn path forgets the rule as after a save."""
    with transaction.atomic():
        saved = EarningRule.objects.select_for_update().filter(pk=rule.pk).first()
        if saved is None:
            return
        _campaigns_lock_draft({saved.campaign_id})
        try:
            # A savepoint: the refusal below leaves the transaction usable for the caller's.
            with transaction.atomic():
                saved.delete()
        except ProtectedError:
            raise Conflict(
                gettext("This rule has given points, which keep it: make it inactive instead."),
                code="rule_in_use",
            ) from None
        audit_record(
            actor=actor,
            action="earning_rule_delete",
            reason=reason,
            details={"rule_id": rule.pk, "name": saved.name},
        )
        transaction.on_commit(lambda: config_cache.forget("earning-rules"))
