"""The channel API passes the pages' middleware by (loyalty_site/api/middleware.py), and keeps
the security headers; pages keep sessions, CSRF and the staff user."""

import pytest
from django.conf import settings
from django.test import Client

from loyalty_site.api.middleware import pages_only
from tests.api.conftest import client_for

pytestmark = pytest.mark.django_db


def test_an_api_answer_carries_the_security_headers_and_no_cookie(channel, member, staff_user):
    client = client_for(channel[1])
    # A staff session cookie sent along changes nothing: the API reads no session.
    client.force_login(staff_user("Customer service"))
    response = client.get(f"/api/v1/members/{member.public_id}/")
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert not response.cookies
    assert "Cookie" not in response.headers.get("Vary", "")


def test_an_api_error_is_still_in_the_requested_language(channel):
    response = client_for(channel[1]).get(
        "/api/v1/members/not-a-member/", HTTP_ACCEPT_LANGUAGE="nl"
    )
    assert response.status_code == 404
    assert response.headers["Content-Language"] == "nl"


def test_a_staff_session_does_not_reach_the_api(member, staff_user, client):
    client.force_login(staff_user("Customer service"))
    response = client.get(f"/api/v1/members/{member.public_id}/")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_page_still_has_csrf_and_sessions(staff_user):
    client = Client(enforce_csrf_checks=True)
    page = client.get("/login/")
    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    assert 'name="csrfmiddlewaretoken"' in page.content.decode()
    assert page.headers["X-Frame-Options"] == "DENY"
    # Without the token the form is refused; with it the session signs the user in.
    user = staff_user("Customer service")
    user.set_password("a long password 1")
    user.save()
    refused = client.post("/login/", {"username": user.username, "password": "a long password 1"})
    assert refused.status_code == 403
    token = page.cookies["csrftoken"].value
    signed_in = client.post(
        "/login/",
        {"username": user.username, "password": "a long password 1", "csrfmiddlewaretoken": token},
    )
    assert signed_in.status_code == 302
    assert client.get("/").status_code == 200


def test_the_wrapped_middleware_are_still_what_the_checks_look_for():
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.sessions.middleware import SessionMiddleware

    from loyalty_site.api import middleware

    assert issubclass(middleware.SessionMiddleware, SessionMiddleware)
    # check --deploy (security.W003) looks for CSRF's dotted path itself, not a subclass.
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert issubclass(middleware.AuthenticationMiddleware, AuthenticationMiddleware)
    assert "axes.middleware.AxesMiddleware" in settings.MIDDLEWARE


def test_pages_only_skips_the_hooks_for_the_api_only(rf):
    calls = []

    class Recorder:
        def __init__(self, get_response):
            self.get_response = get_response

        def __call__(self, request):
            calls.append("call")
            return self.get_response(request)

        def process_view(self, request, view, args, kwargs):
            calls.append("view")

        def process_template_response(self, request, response):
            calls.append("template")
            return response

    wrapped = pages_only(Recorder)(lambda request: "answer")
    api, page = rf.get("/api/v1/members/x/"), rf.get("/members/")
    assert wrapped(api) == "answer"
    assert wrapped.process_view(api, None, (), {}) is None
    assert wrapped.process_template_response(api, "response") == "response"
    assert calls == []
    assert wrapped(page) == "answer"
    wrapped.process_view(page, None, (), {})
    wrapped.process_template_response(page, "response")
    assert calls == ["call", "view", "template"]
