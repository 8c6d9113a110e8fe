import pytest
from django.conf import settings


@pytest.mark.django_db
def test_staff_signs_in_and_reaches_the_landing_page(client, staff_user):
    user = staff_user("Finance")
    response = client.post(
        "/login/", {"username": user.username, "password": "correct horse battery"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.django_db
def test_wrong_password_shows_a_form_error(client, staff_user):
    user = staff_user("Finance")
    response = client.post("/login/", {"username": user.username, "password": "nope"})
    assert response.status_code == 200
    assert b"errornote" in response.content or b"errorlist" in response.content


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
