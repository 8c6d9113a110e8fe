"""The channel API's OpenAPI description: what the views' `extend_schema` share, and the
post-processing of drf-spectacular's output.

`openapi.yaml` is generated from these (see tests/api/test_schema.py); the long examples live here
so that the views read as code.
"""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from loyalty_site.api import serializers as s
from loyalty_site.api.idempotency import HEADER

IDEMPOTENCY_PARAMETER = OpenApiParameter(
    HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description=str(
        _(
            "Any unique string (e.g. a UUID). A retry with the same key and body gets the first "
            "answer and writes nothing; the same key with another body gets 409."
        )
    ),
)


def error_responses(*statuses: int) -> dict:
    """The documented error answers of an operation: 401, 403 and 429 always, plus `statuses`."""
    descriptions = {
        400: _("Invalid input (`code` invalid; `fields` names each problem)."),
        401: _("No or an invalid key (`not_authenticated`)."),
        403: _("The key lacks the scope or the store (`permission_denied`)."),
        404: _("Not found, or not visible to this key (`not_found` or a more specific code)."),
        409: _("Refused in the current state, or an idempotency clash."),
        422: _("Understood but refused by a business rule."),
        413: _("The body is larger than the server accepts (`request_too_large`)."),
        429: _("Too many requests (`throttled`); see Retry-After."),
        503: _(
            "Too many concurrent changes of this member (`busy`): nothing was written; "
            "send it again after Retry-After."
        ),
    }
    return {
        code: OpenApiResponse(s.ErrorSerializer, description=str(descriptions[code]))
        for code in (401, 403, 429, *statuses)
    }


# --- examples ---

MEMBER_ID = "0b7f7a3e-8e43-4a52-9a53-1f1c4a8d2b10"

MEMBER_EXAMPLE = {
    "id": MEMBER_ID,
    "email": "anna@example.nl",
    "first_name": "Anna",
    "last_name": "de Vries",
    "external_id": "",
    "status": "active",
    "balance": 120,
    "available": 120,
    "pending_points": 0,
    "tier": "Silver",
    "points_to_next_tier": 380,
    "cards": [{"number": "6280001234567890", "status": "active"}],
}

MEMBER_EXAMPLES = [OpenApiExample("member", value=MEMBER_EXAMPLE, response_only=True)]

ENROL_EXAMPLES = [
    OpenApiExample(
        "enrol",
        value={
            "email": "anna@example.nl",
            "first_name": "Anna",
            "last_name": "de Vries",
            "consents": {"marketing_email": True},
        },
        request_only=True,
    ),
    OpenApiExample(
        "enrolled",
        value={**MEMBER_EXAMPLE, "card_number": "6280001234567890", "balance": 0},
        response_only=True,
        status_codes=["201"],
    ),
    OpenApiExample(
        "e-mail taken",
        value={"code": "email_taken", "detail": "A member with this e-mail…", "fields": {}},
        response_only=True,
        status_codes=["409"],
    ),
]

PURCHASE_EXAMPLES = [
    OpenApiExample(
        "purchase",
        value={
            "card_number": "6280001234567890",
            "external_id": "till-7-000123",
            "amount": "25.00",
            "currency": "EUR",
            "store": "AMS-01",
            "lines": [
                {
                    "sku": "8710000001",
                    "category": "coffee",
                    "quantity": 2,
                    "amount": "25.00",
                }
            ],
        },
        request_only=True,
    ),
    OpenApiExample(
        "earned",
        value={
            "id": 1042,
            "member": MEMBER_ID,
            "status": "recorded",
            "points_earned": 25,
            "pending_points": 0,
            "rules": [{"rule": "Base rate", "rule_id": 3, "points": 25}],
            "balance": 145,
        },
        response_only=True,
        status_codes=["201"],
    ),
]

RETURN_EXAMPLES = [
    OpenApiExample("full return", value={"external_id": "R-1"}, request_only=True),
    OpenApiExample(
        "partial, by line",
        value={"lines": [{"line": 311, "quantity": 1}]},
        request_only=True,
    ),
]

EVENT_EXAMPLES = [
    OpenApiExample(
        "review",
        value={"kind": "review", "member": MEMBER_ID, "reference": "review-5531"},
        request_only=True,
    ),
    OpenApiExample(
        "survey with an NPS score",
        value={"kind": "survey", "member": MEMBER_ID, "reference": "survey-2026-q4", "score": 9},
        request_only=True,
    ),
]

REDEMPTION_EXAMPLES = [
    OpenApiExample("points", value={"member": MEMBER_ID, "points": 100}, request_only=True),
    OpenApiExample(
        "reward, reserved at a till",
        value={"member": MEMBER_ID, "reward": 7, "reserve": True},
        request_only=True,
    ),
    OpenApiExample(
        "redeemed",
        value={
            "id": 88,
            "member": MEMBER_ID,
            "reward": 7,
            "status": "confirmed",
            "points": 500,
            "code": "K7PQ-2M9X",
            "balance": 145,
            "available": 145,
        },
        response_only=True,
        status_codes=["201"],
    ),
    OpenApiExample(
        "insufficient points",
        value={
            "code": "insufficient_points",
            "detail": "The member does not have enough points.",
            "fields": {},
        },
        response_only=True,
        status_codes=["409"],
    ),
]


# --- post-processing (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]) ---


def strict_request_bodies(result, generator, request, public):
    """Request bodies refuse unknown fields (StrictSerializer), so the schema says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
