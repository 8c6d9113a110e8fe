import pytest
from django.conf import settings
from django.urls import reverse


@pytest.mark.django_db
def test_staff_signs_in_and_reaches_the_landing_page(client, staff_user):
    user = staff_user("Finance")
    response = client.post(
        "/login/", {"username": user.username, "password": "correct horse battery"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.session["_auth_user_id"] == str(user.pk)
    landing = client.get("/")
    assert landing.status_code == 200 and landing.context["user"] == user


@pytest.mark.django_db
def test_wrong_password_shows_a_form_error(client, staff_user):
    user = staff_user("Finance")
    response = client.post("/login/", {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    errors = response.context["form"].non_field_errors()
    assert len(errors) == 1 and "enter a correct username and password" in errors[0]
    assert errors[0] in response.content.decode()
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_login_is_throttled_after_repeated_failures(client, staff_user):
    user = staff_user("Finance")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/login/", {"username": user.username, "password": "wrong"})
    # Now even the right password is refused for this user from this address.
    response = client.post(
        "/login/", {"username": user.username, "password": "correct horse battery"}
    )
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert client.get("/").status_code == 302


@pytest.mark.django_db
def test_admin_login_is_throttled_too(client, staff_user):
    user = staff_user("Administrator")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/admin/login/", {"username": user.username, "password": "wrong"})
    response = client.post(
        "/admin/login/", {"username": user.username, "password": "correct horse battery"}
    )
    assert response.status_code == 429
    assert b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
@pytest.mark.parametrize(("language", "heading"), [("en", "Not allowed"), ("nl", "Geen toegang")])
def test_a_page_the_role_may_not_use_answers_a_page_of_ours(client, staff_user, language, heading):
    client.force_login(staff_user("Customer service"))
    response = client.get("/admin/auth/user/", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 403
    assert f"<h1>{heading}</h1>" in response.content.decode()


@pytest.mark.django_db
def test_an_unknown_page_answers_a_page_of_ours(client):
    response = client.get("/no-such-page/", HTTP_ACCEPT_LANGUAGE="nl")
    assert response.status_code == 404
    assert "<h1>Pagina niet gevonden</h1>" in response.content.decode()


def test_the_server_error_page_renders_without_a_request_in_dutch():
    from django.template.loader import render_to_string
    from django.utils import translation

    with translation.override("nl"):
        assert "<h1>Er ging iets mis</h1>" in render_to_string("500.html")
