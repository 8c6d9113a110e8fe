"""A Content-Security-Policy on every page (issue 12, item 15); inline code only with the nonce.

`manage.py check --deploy` with the production variables is tests/test_settings.py's
test_production_configuration_passes_check_deploy (django-csp is installed and configured).
"""

import re

import pytest

pytestmark = pytest.mark.django_db

INLINE_HANDLER = re.compile(r"<[^>]+\son[a-z]+=", re.IGNORECASE)


def policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


def assert_no_unmarked_inline_code(html: str, nonce: str | None) -> None:
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", html):
        if "src=" in tag or 'type="application/json"' in tag:
            continue
        assert nonce and f'nonce="{nonce}"' in tag, tag
    assert not INLINE_HANDLER.search(html), INLINE_HANDLER.search(html).group(0)


def test_the_policy_allows_only_our_origin_and_no_inline_code(client):
    response = client.get("/login/")
    directives = policy(response)
    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    assert_no_unmarked_inline_code(response.content.decode(), None)


def test_landing_page_has_the_policy(client, staff_user):
    client.force_login(staff_user("Customer service"))
    response = client.get("/")
    assert response.status_code == 200
    assert policy(response)["script-src"] == ["'self'"]
    html = response.content.decode()
    # The language switch submits itself from a static script, not an inline handler.
    assert "/static/js/language.js" in html
    assert_no_unmarked_inline_code(html, None)


@pytest.mark.parametrize(
    "url",
    [
        "/admin/",
        "/admin/members/member/",
        "/admin/loyalty_site/webhooksubscription/add/",
        "/admin/django_celery_beat/periodictask/add/",
    ],
)
def test_admin_pages_have_the_policy(client, staff_user, url):
    client.force_login(staff_user("Administrator", is_superuser=True))
    response = client.get(url)
    assert response.status_code == 200
    directives = policy(response)
    nonce = next(
        (v[len("'nonce-") : -1] for v in directives["script-src"] if v.startswith("'nonce-")),
        None,
    )
    assert "'unsafe-inline'" not in directives["script-src"]
    assert_no_unmarked_inline_code(response.content.decode(), nonce)


def test_the_api_docs_run_their_inline_script_by_nonce(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    directives = policy(response)
    [nonce_source] = [v for v in directives["script-src"] if v.startswith("'nonce-")]
    nonce = nonce_source[len("'nonce-") : -1]
    assert directives["style-src"] == ["'self'", nonce_source]
    assert "'unsafe-inline'" not in response.headers["Content-Security-Policy"]
    html = response.content.decode()
    assert f'<script nonce="{nonce}">' in html and f'<style nonce="{nonce}">' in html
    assert_no_unmarked_inline_code(html, nonce)
    # Swagger UI's files come from our own static files (the sidecar), allowed by 'self'.
    assert re.findall(r'<script src="([^"]+)"', html) == [
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-standalone-preset.js",
    ]
    # A second request gets a fresh nonce.
    assert policy(client.get("/api/docs/"))["script-src"] != directives["script-src"]
