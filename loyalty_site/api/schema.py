"""The channel API's OpenAPI description: what the views' `extend_schema` share, and the
post-processing of drf-spectacular's output.

`openapi.yaml` is generated from these (see tests/api/test_schema.py); the long examples live here
so that the views read as code.
"""

from collections import defaultdict

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from loyalty_site.api.idempotency import HEADER
from loyalty_site.errors import ERROR_CODES

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


class AmountFieldExtension(OpenApiSerializerFieldExtension):
    """An amount's schema carries the very pattern its field accepts (serializers.AmountField)."""

    target_class = "loyalty_site.api.serializers.AmountField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "format": "decimal", "pattern": self.target.pattern}


class CurrencyFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "loyalty_site.api.serializers.CurrencyField"

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "enum": [settings.LOYALTY_CURRENCY]}


# A path parameter that is a string holds no control character and no `/` (see PATH_CODES).
PATH_TEXT_PATTERN = r"^[^/\u0000-\u001f\u007f-\u009f]+$"
MEMBER_ID_PARAMETER = OpenApiParameter("id", OpenApiTypes.UUID, OpenApiParameter.PATH)
CARD_NUMBER_PARAMETER = OpenApiParameter(
    "number", {"type": "string", "pattern": PATH_TEXT_PATTERN}, OpenApiParameter.PATH
)


def object_id_parameter(description: str) -> OpenApiParameter:
    return OpenApiParameter(
        "id",
        {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        OpenApiParameter.PATH,
        description=description,
    )


# Every operation can answer these: no or a wrong key, a key without the scope, a throttle.
COMMON_CODES = ("not_authenticated", "permission_denied", "throttled")
# Every write can answer these too: the body, its size and type, its Idempotency-Key, and a
# write that lost to concurrent writes of the same member every time it was tried.
WRITE_CODES = (
    "invalid",
    "parse_error",
    "request_too_large",
    "unsupported_media_type",
    "idempotency_conflict",
    "idempotency_in_progress",
    "busy",
)
# And every operation with a path parameter: one with a control character
# (`ChannelViewSet.initial`), or with a `/` (then it is another path, which no route has).
PATH_CODES = ("invalid_path_parameter", "not_found")

_STATUS_DESCRIPTIONS = {
    400: _("Invalid input: `fields` names each problem."),
    401: _("No key, or an invalid one."),
    403: _("The key lacks the scope or the store."),
    404: _("Not found, or not visible to this key."),
    409: _("Refused in the current state, or an idempotency clash."),
    413: _("The body is larger than the server accepts."),
    415: _("The body is not `application/json`."),
    422: _("Understood but refused by a business rule."),
    429: _("Too many requests; see Retry-After."),
    503: _(
        "Too many concurrent changes of this member: nothing was written; "
        "send it again after Retry-After."
    ),
}


def error_responses(*codes: str) -> dict:
    """The documented error answers of an operation that can answer `codes` (besides
    COMMON_CODES): one response per status, whose `code` is one of that status's codes.

    The statuses come from `ERROR_CODES`, the one list of codes; a code not in it fails here,
    when the views are imported.
    """
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in dict.fromkeys((*COMMON_CODES, *codes)):
        by_status[ERROR_CODES[code]].append(code)
    return {
        status: OpenApiResponse(
            {
                "allOf": [
                    {"$ref": "#/components/schemas/Error"},
                    {"type": "object", "properties": {"code": {"enum": sorted(found)}}},
                ]
            },
            description=f"{_STATUS_DESCRIPTIONS[status]} Codes: "
            + ", ".join(f"`{code}`" for code in sorted(found))
            + ".",
        )
        for status, found in sorted(by_status.items())
    }


def error_schemas() -> dict:
    """The `Error` component (the one error body, loyalty_site/api/exceptions.py) and the
    `ErrorCode` enumeration of every code in `ERROR_CODES`."""
    return {
        "ErrorCode": {
            "type": "string",
            "enum": sorted(ERROR_CODES),
            "description": "\n".join(
                f"* `{code}` - {status}" for code, status in sorted(ERROR_CODES.items())
            ),
        },
        "Error": {
            "type": "object",
            "properties": {
                "code": {"$ref": "#/components/schemas/ErrorCode"},
                "detail": {"type": "string", "description": "For people; may be translated."},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": (
                        "Each problem's field path (`email`, `lines.0.amount`; "
                        "`non_field_errors` for the body as a whole) and its messages; "
                        "empty when no field is at fault."
                    ),
                },
            },
            "required": ["code", "detail", "fields"],
            "additionalProperties": False,
        },
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


def error_components(result, generator, request, public):
    """The `Error` and `ErrorCode` components that every error response refers to."""
    components = result.setdefault("components", {})
    components["schemas"] = dict(
        sorted({**components.get("schemas", {}), **error_schemas()}.items())
    )
    return result


def strict_request_bodies(result, generator, request, public):
    """Request bodies refuse unknown fields (StrictSerializer), so the schema says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


# Who a request names, as JSON Schema can say it: exactly one of each pair (the serializers'
# `validate` refuses both or neither with 400).
_EXACTLY_ONE = {
    "PurchaseCreateRequest": [("member", "card_number")],
    "RedemptionCreateRequest": [("member", "card_number"), ("reward", "points")],
}


def exactly_one_of(result, generator, request, public):
    """`oneOf` the `required` of each pair that a request body must name exactly one of."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, pairs in _EXACTLY_ONE.items():
        if name in schemas:
            schemas[name]["allOf"] = [
                {"oneOf": [{"required": [first]}, {"required": [second]}]}
                for first, second in pairs
            ]
    return result


def _link(operation_id: str, description: str, *, parameters=None, body=None) -> dict:
    link = {"operationId": operation_id, "description": description}
    if parameters:
        link["parameters"] = parameters
    if body:
        link["requestBody"] = body
    return link


_MEMBER_ID = "$response.body#/id"
# OpenAPI links: what an answer's ids lead to. Clients and tools (Swagger UI, a stateful fuzzer)
# follow them from an enrolment to its member, purchases, returns and redemptions.
_LINKS = {
    ("/api/v1/members/", "post", "201"): {
        "member": _link("members_retrieve", "The member.", parameters={"id": _MEMBER_ID}),
        "card": _link(
            "cards_retrieve", "Their card.", parameters={"number": "$response.body#/card_number"}
        ),
        "ledger": _link("members_ledger_list", "Their ledger.", parameters={"id": _MEMBER_ID}),
        "rewards": _link("members_rewards_list", "Their rewards.", parameters={"id": _MEMBER_ID}),
        "purchase": _link("purchases_create", "Record a purchase.", body={"member": _MEMBER_ID}),
        "event": _link("events_create", "Record an event.", body={"member": _MEMBER_ID}),
        "redemption": _link("redemptions_create", "Redeem.", body={"member": _MEMBER_ID}),
    },
    ("/api/v1/purchases/", "post", "201"): {
        "return": _link(
            "purchases_returns_create", "Return it.", parameters={"id": "$response.body#/id"}
        ),
        "member": _link(
            "members_retrieve", "The member.", parameters={"id": "$response.body#/member"}
        ),
    },
    ("/api/v1/redemptions/", "post", "201"): {
        "confirm": _link(
            "redemptions_confirm_create", "Confirm it.", parameters={"id": "$response.body#/id"}
        ),
        "cancel": _link(
            "redemptions_cancel_create", "Cancel it.", parameters={"id": "$response.body#/id"}
        ),
    },
}


def response_links(result, generator, request, public):
    for (path, method, status), links in _LINKS.items():
        response = result.get("paths", {}).get(path, {}).get(method, {}).get("responses", {})
        if status in response:
            response[status]["links"] = links
    return result


# The parser refuses a NUL anywhere in a body (loyalty_site/api/parsers.py), so no string of a
# request body may hold one; a string with a pattern of its own says more already.
_NO_NUL_PATTERN = r"^[^\u0000]*$"
# A required text is trimmed first (DRF's CharField): it needs one character that is not space.
_NOT_BLANK_PATTERN = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


def _strings_without_nul(schema) -> None:
    if isinstance(schema, dict):
        free_text = schema.get("format") not in ("uuid", "date", "date-time", "email")
        if schema.get("type") == "string" and free_text and not {"pattern", "enum"} & set(schema):
            blank = schema.get("minLength", 0) == 0
            schema["pattern"] = _NO_NUL_PATTERN if blank else _NOT_BLANK_PATTERN
        for value in schema.values():
            _strings_without_nul(value)
    elif isinstance(schema, list):
        for item in schema:
            _strings_without_nul(item)


def request_strings(result, generator, request, public):
    """What a request body can hold, as the parser enforces it: no NUL in any string; and a body
    that must name one of a pair (`_EXACTLY_ONE`) is required, as an empty one is refused."""
    schemas = result.get("components", {}).get("schemas", {})
    for name, component in schemas.items():
        if name.endswith("Request"):
            _strings_without_nul(component)
    needs_body = {f"#/components/schemas/{name}" for name in _EXACTLY_ONE}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody")
            if not body:
                continue
            refs = {media.get("schema", {}).get("$ref") for media in body["content"].values()}
            if refs & needs_body:
                body["required"] = True
    return result
