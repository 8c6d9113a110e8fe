"""A member's access request (export) and erasure, composed across every app.

``members`` only knows its own fields; this module sits at the top so that it may read the
ledger, rewards and campaigns too. Both actions are audited in ``members.AuditEntry``.
"""

import json

from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ledger import selectors as ledger_selectors
from ledger import services as ledger_services
from loyalty_site.errors import Conflict
from members.errors import MemberErased, ReasonRequired
from members.models import Card, Consent, Member, TierHistory
from members.selectors import consents_current
from members.services import audit_record, member_scrub
from rewards import services as rewards_services

# Apps whose rows that point at a member are part of the export beyond the ones listed by name
# below (redemptions, messages, events, ...), found through their foreign keys to Member.
EXPORTED_APPS = ("rewards", "campaigns")


class RedemptionReserved(Conflict):
    code = "redemption_reserved"
    default_detail = _("The member has a reserved redemption: confirm or cancel it first.")


def _row(obj: models.Model) -> dict:
    """Every concrete field of a row, foreign keys as ids."""
    return {field.attname: getattr(obj, field.attname) for field in obj._meta.concrete_fields}


def _related_rows() -> list[tuple[str, type[models.Model], str]]:
    """(label, model, field name) for every model of EXPORTED_APPS with a FK to Member."""
    found = []
    for app_label in EXPORTED_APPS:
        if not apps.is_installed(app_label):
            continue
        for model in apps.get_app_config(app_label).get_models():
            if model._meta.proxy:
                continue
            for field in model._meta.concrete_fields:
                if (
                    isinstance(field, models.ForeignKey)
                    and field.related_model is Member
                    and field.model is model
                ):
                    found.append((model._meta.label, model, field.name))
    return found


def member_export(*, member: Member, actor=None, reason: str = "") -> dict:
    """All the personal data held about a member, as one JSON-ready document; audited with
    ``reason`` (e.g. the member's access request) when staff (``actor``) ask for it."""
    member = Member.objects.select_related("tier").get(pk=member.pk)
    document = {
        "exported_at": timezone.now(),
        "member": {
            "id": str(member.public_id),
            "external_id": member.external_id,
            "first_name": member.first_name,
            "last_name": member.last_name,
            "email": member.email,
            "phone": str(member.phone or ""),
            "birth_date": member.birth_date,
            "locale": member.locale,
            "status": member.status,
            "enrolled_at": member.enrolled_at,
            "enrolled_channel": member.enrolled_channel,
            "tier": member.tier.name if member.tier_id else None,
            "tier_since": member.tier_since,
            "profile": member.profile,
            "nps_score": member.nps_score,
            "nps_at": member.nps_at,
        },
        "cards": [
            {
                "number": card.number,
                "status": card.status,
                "issued_at": card.issued_at,
                "status_changed_at": card.status_changed_at,
            }
            for card in Card.objects.filter(member=member).order_by("issued_at", "id")
        ],
        "consents": {
            "current": consents_current(member=member),
            "history": [
                {
                    "purpose": consent.purpose,
                    "action": consent.action,
                    "at": consent.at,
                    "channel": consent.channel,
                    "wording_version": consent.wording_version,
                }
                for consent in Consent.objects.filter(member=member).order_by("at", "id")
            ],
        },
        "tier_history": [
            {
                "from": change.from_tier.name if change.from_tier_id else None,
                "to": change.to_tier.name if change.to_tier_id else None,
                "reason": change.reason,
                "qualifying_points": change.qualifying_points,
                "at": change.at,
            }
            for change in TierHistory.objects.filter(member=member)
            .select_related("from_tier", "to_tier")
            .order_by("at", "id")
        ],
        "points": {
            "account": ledger_selectors.balance_summary(member=member),
            "entries": [
                {
                    "kind": entry.kind,
                    "points": entry.amount,
                    "balance_after": entry.balance_after,
                    "channel": entry.channel,
                    "reference": entry.reference,
                    "reason": entry.reason_text,
                    "reason_code": entry.reason_code,
                    "reason_params": entry.reason_params,
                    "at": entry.created_at,
                }
                for entry in ledger_selectors.entries_for(member=member)
            ],
        },
        "purchases": [
            {
                "channel": purchase.channel,
                "store": purchase.store,
                "external_id": purchase.external_id,
                "amount": purchase.amount,
                "currency": purchase.currency,
                "occurred_at": purchase.occurred_at,
                "lines": [
                    {
                        "sku": line.sku,
                        "category": line.category,
                        "quantity": line.quantity,
                        "amount": line.amount,
                    }
                    for line in purchase.lines.all()
                ],
            }
            for purchase in ledger_selectors.purchases_for(member=member)
        ],
    }
    # Redemptions, messages, engagement events, ...: whatever the higher apps keep about the
    # member, row by row, so that nothing they add later is silently left out.
    for label, model, field_name in _related_rows():
        rows = model._default_manager.filter(**{field_name: member}).order_by("pk")
        document.setdefault("other", {})[label] = [_row(obj) for obj in rows]
    if actor is not None:
        audit_record(actor=actor, action="member_export", member=member, reason=reason)
    # Dates, decimals and UUIDs as Django writes them to JSON everywhere else.
    return json.loads(json.dumps(document, cls=DjangoJSONEncoder))


def _reserved_redemptions(member: Member) -> bool:
    try:
        redemption = apps.get_model("rewards", "Redemption")
    except LookupError:
        return False
    return redemption._default_manager.filter(member=member, status="reserved").exists()


@transaction.atomic
def member_erase(*, member: Member, actor, reason: str) -> Member:
    """Erase a member's personal data and keep the ledger, pseudonymous (invariant 8).

    Refused while a redemption is reserved: its confirmation or cancellation still needs the
    member, and erasing first would leave points held for nobody.
    """
    if not (reason or "").strip():
        raise ReasonRequired(fields={"reason": ReasonRequired.default_detail})
    locked = Member.objects.select_for_update().get(pk=member.pk)
    if locked.status == Member.Status.ERASED:
        raise MemberErased()
    if _reserved_redemptions(locked):
        raise RedemptionReserved()
    erased = member_scrub(member=locked, actor=actor, reason=reason)
    # Copies of personal data that other apps keep: shipping addresses and stored API answers.
    rewards_services.redemptions_scrub(member=locked)
    ledger_services.idempotency_scrub(member=locked)
    audit_record(actor=actor, action="member_erase", member=erased, reason=reason)
    return erased
