"""The committed OpenAPI schema is current, and the running API keeps its promises."""

import io
from pathlib import Path

import pytest
import schemathesis
from django.core import signals
from django.core.management import call_command
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import translation
from hypothesis import HealthCheck, settings
from schemathesis import checks

from loyalty_site.models import SCOPES, Channel, ChannelAPIKey
from tests.api.factories import member_with

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "loyalty_site" / "api" / "openapi.yaml"
REGENERATE = (
    ".venv/bin/python manage.py spectacular --file loyalty_site/api/openapi.yaml --validate"
)


def test_committed_schema_is_current():
    out = io.StringIO()
    # The committed schema is the English one, whatever language an earlier test left active.
    with translation.override("en"):
        call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert out.getvalue() == SCHEMA_PATH.read_text(), (
        f"loyalty_site/api/openapi.yaml is stale; regenerate it with:\n    {REGENERATE}"
    )


@pytest.mark.django_db
def test_schema_and_docs_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


schema = schemathesis.openapi.from_path(SCHEMA_PATH)
schema.app = get_wsgi_application()


@pytest.fixture
def fuzz_headers(db):
    # As Django's test client does: a request must not close the test's connection (it would,
    # seeing a transaction open, at request_finished).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    channel = Channel.objects.create(name="fuzz", kind="pos", scopes=list(SCOPES))
    _api_key, key = ChannelAPIKey.objects.create_key(name="fuzz", channel=channel)
    member_with(points=100)
    yield {"Authorization": f"Api-Key {key}"}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.mark.django_db
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_schema(case, fuzz_headers):
    # No 5xx, and every answer (status, content type, headers, body) as documented. Not
    # positive_data_acceptance: a schema-valid body may still be refused by a business rule
    # (400 for "member or card_number", 422/409 from the services), which is documented.
    case.call_and_validate(
        headers=fuzz_headers,
        checks=[
            checks.not_a_server_error,
            checks.status_code_conformance,
            checks.content_type_conformance,
            checks.response_headers_conformance,
            checks.response_schema_conformance,
        ],
    )
