"""The one error vocabulary.

Services raise a ``DomainError`` subclass (or ``DomainError`` with a code) when they refuse an
action. The API's exception handler turns it into a 4xx JSON body
``{"code": ..., "detail": ..., "fields": {...}}`` and ``form_error`` turns it into a form error;
commands print ``detail`` on one line. This module imports no app, so every app may use it.

A code means one thing to a channel: it has one class and one status. A code raised in more than
one place gets a class of its own, in the lowest app that raises it (``tests/test_errors.py``
checks both).

``ERROR_CODES`` is the one list of every code with its status: the codes the services raise and
the ones the API answers itself (a body it cannot parse, a missing key, a throttle). The OpenAPI
schema enumerates it; tests check that every code raised in the sources is in it with its class's
status and that the README's table lists every one.
"""

from django.utils.translation import gettext_lazy as _

ERROR_CODES: dict[str, int] = {
    # The API's own answers, before or around any service.
    "invalid": 400,
    "invalid_path_parameter": 400,
    "parse_error": 400,
    "not_authenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "not_acceptable": 406,
    "request_too_large": 413,
    "unsupported_media_type": 415,
    "throttled": 429,
    "server_error": 500,
    "busy": 503,
    # Not found, or not visible to the key.
    "card_not_found": 404,
    "member_not_found": 404,
    "purchase_not_found": 404,
    "redemption_not_found": 404,
    "reward_not_found": 404,
    "unknown_event_kind": 404,
    "voucher_not_found": 404,
    # Refused in the current state.
    "account_in_debt": 409,
    "card_blocked": 409,
    "card_not_active": 409,
    "card_number_exhausted": 409,
    "card_number_taken": 409,
    "campaign_not_editable": 409,
    "campaign_not_sendable": 409,
    "campaign_transition_invalid": 409,
    "rule_in_use": 409,
    "card_replaced": 409,
    "channel_exists": 409,
    "conflict": 409,
    "duplicate_event": 409,
    "duplicate_purchase": 409,
    "duplicate_return": 409,
    "email_taken": 409,
    "engagement_limit_reached": 409,
    "external_id_taken": 409,
    "fulfilment_transition": 409,
    "hold_not_open": 409,
    "idempotency_conflict": 409,
    "idempotency_in_progress": 409,
    "insufficient_points": 409,
    "limit_reached": 409,
    "member_blocked": 409,
    "member_erased": 409,
    "not_pending": 409,
    "nothing_to_return": 409,
    "out_of_stock": 409,
    "pending_not_open": 409,
    "period_closed": 409,
    "phone_taken": 409,
    "redemption_confirmed": 409,
    "redemption_not_reserved": 409,
    "redemption_reserved": 409,
    "referral_code_exhausted": 409,
    "request_not_pending": 409,
    "reservation_expired": 409,
    "reward_not_offered": 409,
    "reward_unavailable": 409,
    "self_approval": 409,
    "voucher_expired": 409,
    "voucher_not_issued": 409,
    "voucher_not_usable": 409,
    "voucher_pool_empty": 409,
    "voucher_used": 409,
    # Understood, but refused by a business rule.
    "actor_required": 422,
    "campaign_not_ready": 422,
    "currency_not_supported": 422,
    "discount_too_small": 422,
    "invalid_count": 422,
    "invalid_currency": 422,
    "invalid_email": 422,
    "invalid_field": 422,
    "invalid_phone": 422,
    "invalid_points": 422,
    "invalid_purpose": 422,
    "invalid_rate": 422,
    "invalid_referral": 422,
    "invalid_score": 422,
    "message_template_missing": 422,
    "not_reversible": 422,
    "purchase_too_late": 422,
    "reason_required": 422,
    "return_exceeds_purchase": 422,
    "reverse_exceeds_entry": 422,
    "same_member": 422,
    "score_not_collected": 422,
    "score_required": 422,
    "unknown_line": 422,
    "unknown_scopes": 422,
    "use_erase": 422,
}


class DomainError(Exception):
    """A refusal by a service, with a stable machine-readable code."""

    code = "invalid"
    status = 422
    default_detail = _("The request could not be carried out.")

    def __init__(self, detail=None, *, code: str | None = None, fields: dict | None = None):
        self.detail = detail if detail is not None else self.default_detail
        if code is not None:
            self.code = code
        self.fields = fields or {}
        super().__init__(str(self.detail))


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_detail = _("Not found.")


class Conflict(DomainError):
    """The action clashes with the current state (e.g. not enough points, already confirmed)."""

    code = "conflict"
    status = 409
    default_detail = _("The request conflicts with the current state.")


def form_error(form, error: DomainError) -> None:
    """Show a service's refusal on a form: on the named fields, else as a non-field error."""
    if error.fields:
        for field, message in error.fields.items():
            form.add_error(field if field in form.fields else None, message)
    else:
        form.add_error(None, error.detail)
