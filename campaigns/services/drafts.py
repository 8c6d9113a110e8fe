"""A campaign's contents while it is a draft: creating the campaign, its message templates and
its offer options (the builder page's writes; the fields of an existing campaign change through
`lifecycle.campaign_update`).

Templates and offers are part of what scheduling checked (a message campaign needs a template,
an offer campaign's options decide who gets what), so like the campaign's own fields they change
only while it is a draft: a scheduled campaign goes back to draft first. Each write locks the
campaign row and checks its status under the lock, so a template cannot slip in while another
request schedules the campaign. Every write is recorded in the staff audit log.
"""

from django.db import transaction
from django.utils.translation import gettext

from campaigns.errors import CampaignNotEditable
from campaigns.models import Campaign, CampaignOffer, MessageTemplate
from campaigns.services.lifecycle import DRAFT_FIELDS
from members.services import audit_record


def _draft_locked(campaign: Campaign) -> Campaign:
    locked = Campaign.objects.select_for_update(of=("self",)).get(pk=campaign.pk)
    if locked.status != Campaign.Status.DRAFT:
        raise CampaignNotEditable(
            gettext(
                "Only a draft campaign's templates and offers can be changed; it is %(status)s."
            )
            % {"status": locked.get_status_display().lower()}
        )
    return locked


@transaction.atomic
def campaign_create(*, actor, reason: str = "", **fields) -> Campaign:
    """A new draft campaign with the given fields (those a draft may set: `DRAFT_FIELDS`).

    Raises ValidationError for fields the model refuses (an end before the start, a control
    group above half the audience).
    """
    unknown = set(fields) - DRAFT_FIELDS
    if unknown:
        raise ValueError(f"not campaign fields: {sorted(unknown)}")
    campaign = Campaign(created_by=actor, status=Campaign.Status.DRAFT, **fields)
    campaign.full_clean(exclude=["salt"])
    campaign.save()
    audit_record(
        actor=actor,
        action="campaign_create",
        reason=reason,
        details={"campaign_id": campaign.pk, "kind": campaign.kind},
    )
    return campaign


@transaction.atomic
def message_template_save(
    *,
    campaign: Campaign,
    actor,
    template: MessageTemplate | None = None,
    channel: str,
    language: str,
    subject: str = "",
    body: str,
    html_body: str = "",
    reason: str = "",
) -> MessageTemplate:
    """Add a template to a draft campaign, or change one of its templates.

    Raises ValidationError when the template does not compile in the message engine
    (campaigns.message_rendering) or the campaign has one for that channel and language already;
    CampaignNotEditable when the campaign is no longer a draft.
    """
    locked = _draft_locked(campaign)
    if template is None:
        template = MessageTemplate(campaign=locked)
    else:
        template = MessageTemplate.objects.select_for_update().get(pk=template.pk, campaign=locked)
    created = template.pk is None
    template.channel, template.language = channel, language
    template.subject, template.body, template.html_body = subject, body, html_body
    template.full_clean()
    template.save()
    audit_record(
        actor=actor,
        action="message_template_create" if created else "message_template_update",
        reason=reason,
        details={
            "campaign_id": locked.pk,
            "template_id": template.pk,
            "channel": channel,
            "language": language,
        },
    )
    return template


@transaction.atomic
def message_template_delete(
    *, campaign: Campaign, template_id: int, actor, reason: str = ""
) -> None:
    locked = _draft_locked(campaign)
    template = MessageTemplate.objects.get(pk=template_id, campaign=locked)
    details = {
        "campaign_id": locked.pk,
        "template_id": template.pk,
        "channel": template.channel,
        "language": template.language,
    }
    template.delete()
    audit_record(actor=actor, action="message_template_delete", reason=reason, details=details)


@transaction.atomic
def campaign_offer_add(
    *,
    campaign: Campaign,
    actor,
    reward,
    rule: str,
    category: str = "",
    days: int | None = None,
    priority: int = 0,
    reason: str = "",
) -> CampaignOffer:
    """An offer option for a draft offer campaign: `reward` for the members `rule` matches.

    Raises ValidationError for an option the model refuses (a category rule without a category,
    days on a rule that takes none, an option on a campaign that is not an offer campaign).
    """
    locked = _draft_locked(campaign)
    offer = CampaignOffer(
        campaign=locked, reward=reward, rule=rule, category=category, days=days, priority=priority
    )
    offer.full_clean()
    offer.save()
    audit_record(
        actor=actor,
        action="campaign_offer_create",
        reason=reason,
        details={"campaign_id": locked.pk, "offer_id": offer.pk, "reward_id": reward.pk},
    )
    return offer


@transaction.atomic
def campaign_offer_delete(*, campaign: Campaign, offer_id: int, actor, reason: str = "") -> None:
    locked = _draft_locked(campaign)
    offer = CampaignOffer.objects.get(pk=offer_id, campaign=locked)
    details = {"campaign_id": locked.pk, "offer_id": offer.pk, "reward_id": offer.reward_id}
    offer.delete()
    audit_record(actor=actor, action="campaign_offer_delete", reason=reason, details=details)
