"""What the schema says a request may hold is what the server accepts (the contract that
.ci/schemathesis checks live): amounts, page sizes, filters, who a body names."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from loyalty_site.api.serializers import (
    AMOUNT_PATTERN,
    POSITIVE_AMOUNT_PATTERN,
    amount_pattern_up_to,
)

SCHEMA = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "loyalty_site/api/openapi.yaml").read_text()
)


@pytest.mark.parametrize(
    ("pattern", "good", "bad"),
    [
        (AMOUNT_PATTERN, ["0", "0.5", "12.50", "9999999999.99"], ["", "-1", "01", "1.", "1e3"]),
        (POSITIVE_AMOUNT_PATTERN, ["0.01", "0.1", "3", "10.00"], ["0", "0.00", "0.0", "", "-0.5"]),
        (
            amount_pattern_up_to(Decimal("100000.00")),
            ["0", "99999.99", "100000", "100000.00"],
            ["100000.01", "100001", "123456", ""],
        ),
        (amount_pattern_up_to(Decimal("2500")), ["2500", "999.99"], ["10000"]),
    ],
)
def test_amount_patterns(pattern, good, bad):
    assert [value for value in good if not re.fullmatch(pattern, value)] == []
    assert [value for value in bad if re.fullmatch(pattern, value)] == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "status"),
    [("10", 201), ("10.5", 201), ("010.00", 400), ("1e1", 400), (10, 400), ("100000.01", 400)],
)
def test_the_server_accepts_exactly_the_schemas_amounts(api, member, amount, status):
    body = {"member": str(member.public_id), "external_id": "A-1", "amount": amount}
    response = api.post("/api/v1/purchases/", body, format="json")
    assert response.status_code == status, response.json()
    if status == 400:
        assert list(response.json()["fields"]) == ["amount"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        "page_size=0",
        "page_size=201",
        "page_size=x",
        "page_size=2&page_size=3",
        "kind=",
        "created_after=",
    ],
)
def test_a_ledger_parameter_outside_the_schema_is_refused(api, member, query):
    response = api.get(f"/api/v1/members/{member.public_id}/ledger/?{query}")
    assert response.status_code == 400, response.json()
    assert list(response.json()["fields"]) == [query.split("=")[0]]


@pytest.mark.django_db
def test_a_ledger_page_size_in_range_is_kept(api, member):
    response = api.get(f"/api/v1/members/{member.public_id}/ledger/?page_size=200")
    assert response.status_code == 200


def test_the_schema_says_who_a_body_names():
    schemas = SCHEMA["components"]["schemas"]
    assert schemas["PurchaseCreateRequest"]["allOf"] == [
        {"oneOf": [{"required": ["member"]}, {"required": ["card_number"]}]}
    ]
    assert len(schemas["RedemptionCreateRequest"]["allOf"]) == 2
    redeem = SCHEMA["paths"]["/api/v1/redemptions/"]["post"]
    assert redeem["requestBody"]["required"] is True


def test_the_schema_links_an_enrolment_to_what_follows():
    links = SCHEMA["paths"]["/api/v1/members/"]["post"]["responses"]["201"]["links"]
    assert links["purchase"]["requestBody"] == {"member": "$response.body#/id"}
    operation_ids = {
        operation["operationId"] for path in SCHEMA["paths"].values() for operation in path.values()
    }
    for responses in (op["responses"] for path in SCHEMA["paths"].values() for op in path.values()):
        for response in responses.values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in operation_ids


def test_every_path_parameter_is_typed_so_generated_ids_are_what_the_server_takes():
    """An untyped `{id}` lets a client (and Schemathesis) send any text, which the server then
    refuses: every path parameter says its format, range or pattern."""
    components = SCHEMA["components"].get("parameters", {})
    untyped = []
    for path, operations in SCHEMA["paths"].items():
        for method, operation in operations.items():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                if "$ref" in parameter:
                    parameter = components[parameter["$ref"].rsplit("/", 1)[-1]]
                schema = parameter.get("schema", {})
                # The router's own "^[^/]+$" admits control characters the server refuses.
                pattern = schema.get("pattern", "^[^/]+$")
                if parameter["in"] == "path" and not (
                    schema.get("format") or "minimum" in schema or pattern != "^[^/]+$"
                ):
                    untyped.append(f"{method.upper()} {path} {parameter['name']}")
    assert untyped == []
