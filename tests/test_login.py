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
