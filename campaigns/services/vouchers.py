"""Sending a member their voucher code again (customer service: "I lost my voucher e-mail").

A service message, not a campaign's: it goes to the member's own address through the channel's
backend (campaigns.backends) whatever their marketing consents and the frequency caps, because
the member asked for it. Only an issued code that is still usable is sent; the code itself is
never written to the audit log (the entry names the redemption and the channel).
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _

from campaigns.backends import DeliveryRefused, backend_for
from campaigns.message_rendering import language_of
from loyalty_site.errors import DomainError
from members.busy import WriteBusy
from members.errors import InvalidEmail, InvalidPhone, ReasonRequired
from members.services import audit_record
from rewards.errors import VoucherNotUsable
from rewards.models import Redemption, VoucherCode

logger = logging.getLogger(__name__)

CHANNELS = ("email", "sms")


def _address(redemption: Redemption, channel: str) -> str:
    member = redemption.member
    if channel == "email":
        if not member.email:
            raise InvalidEmail(_("The member has no e-mail address to send the voucher to."))
        return member.email
    if not member.phone:
        raise InvalidPhone(_("The member has no phone number to send the voucher to."))
    return str(member.phone)


def _code(redemption: Redemption) -> VoucherCode:
    code = VoucherCode.objects.filter(redemption=redemption).first()
    if code is None or redemption.status != Redemption.Status.CONFIRMED:
        raise VoucherNotUsable(
            _("This redemption has no voucher code to send."), code="voucher_not_issued"
        )
    if code.status == VoucherCode.Status.USED:
        raise VoucherNotUsable(_("This voucher code has been used already."), code="voucher_used")
    if code.status == VoucherCode.Status.EXPIRED or (
        code.expires_at is not None and code.expires_at <= timezone.now()
    ):
        raise VoucherNotUsable(_("This voucher code has expired."), code="voucher_expired")
    return code


def _message(redemption: Redemption, code: VoucherCode) -> tuple[str, str]:
    """Subject and body in the member's language."""
    with translation.override(language_of(redemption.member)):
        reward = redemption.reward.name if redemption.reward else _("your reward")
        subject = _("Your voucher for %(reward)s") % {"reward": reward}
        body = _("Your voucher code for %(reward)s: %(code)s") % {
            "reward": reward,
            "code": code.code,
        }
        if code.expires_at is not None:
            valid = formats.date_format(timezone.localtime(code.expires_at), "DATE_FORMAT")
            body += "\n" + _("Valid until %(date)s.") % {"date": valid}
    return subject, body


def voucher_resend(*, redemption: Redemption, actor, reason: str, channel: str = "email") -> str:
    """Send `redemption`'s voucher code to its member again by `channel` ("email" or "sms");
    returns the provider's id. Recorded in the member's audit trail with who and why."""
    reason = (reason or "").strip()
    if not reason:
        raise ReasonRequired()
    if actor is None:
        raise DomainError(_("A staff user must send the voucher."), code="actor_required")
    if channel not in CHANNELS:
        raise DomainError(_("Send the voucher by e-mail or SMS."), code="invalid_field")
    redemption = Redemption.objects.select_related("member", "reward").get(pk=redemption.pk)
    code = _code(redemption)
    to = _address(redemption, channel)
    subject, body = _message(redemption, code)
    try:
        # One id per resend: each is a new message the member asked for.
        provider_id = backend_for(channel).send(
            f"voucher-resend-{redemption.pk}-{uuid.uuid4().hex}", to, subject, body
        )
    except DeliveryRefused as refusal:
        raise DomainError(
            _("The provider refused the address: %(why)s") % {"why": refusal}, code="invalid_field"
        ) from refusal
    except Exception as failure:  # the provider is down or timed out: nothing was recorded
        logger.warning("voucher resend of redemption %s failed: %s", redemption.pk, failure)
        raise WriteBusy(
            _("The message could not be sent just now; try again in a moment.")
        ) from failure
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="voucher_resend",
            member=redemption.member,
            reason=reason,
            details={"redemption_id": redemption.pk, "channel": channel},
        )
    return provider_id
