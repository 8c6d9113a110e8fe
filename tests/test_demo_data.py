import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from members.models import Card, Member


@pytest.mark.django_db
def test_demo_data_loads_once_and_reuses_what_exists(capsys):
    call_command("demo_data")
    members, cards = Member.objects.count(), Card.objects.count()
    users = get_user_model().objects.count()
    assert members >= 500
    assert cards >= members
    assert users == 4

    call_command("demo_data")
    assert Member.objects.count() == members
    assert Card.objects.count() == cards
    assert get_user_model().objects.count() == users
    out = capsys.readouterr().out
    assert "marketing" in out and "loyalty-demo" in out


@pytest.mark.django_db
def test_demo_logins_have_their_role(client):
    call_command("demo_data")
    user = get_user_model().objects.get(username="service")
    assert list(user.groups.values_list("name", flat=True)) == ["Customer service"]
    response = client.post("/login/", {"username": "service", "password": "loyalty-demo"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
