import io

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from loyalty_site import roles


def _codes(role):
    group = Group.objects.get(name=role)
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}


@pytest.mark.django_db
def test_setup_roles_creates_four_groups_with_their_permissions():
    call_command("setup_roles", stdout=io.StringIO())
    assert set(Group.objects.values_list("name", flat=True)) >= {
        "Marketing",
        "Customer service",
        "Finance",
        "Administrator",
    }
    for role in (roles.MARKETING, roles.CUSTOMER_SERVICE, roles.FINANCE):
        assert _codes(role) == roles.ROLE_PERMISSIONS[role]


@pytest.mark.django_db
def test_least_privilege_between_roles():
    roles.roles_sync()
    marketing = _codes("Marketing")
    service = _codes("Customer service")
    admin = _codes("Administrator")
    assert "members.change_member" in service
    assert "members.change_member" not in marketing
    assert "auth.change_user" in admin
    assert not any(code.startswith("auth.") for code in marketing | service)
    assert not any(code.startswith("auth.") for code in _codes("Finance"))
    # No role may delete members: erasure is a service that keeps the ledger.
    assert not any(code == "members.delete_member" for code in marketing | service)


@pytest.mark.django_db
def test_setup_roles_removes_permissions_added_by_hand():
    roles.roles_sync()
    group = Group.objects.get(name="Marketing")
    group.permissions.add(Permission.objects.get(codename="delete_member"))
    roles.roles_sync()
    assert "members.delete_member" not in _codes("Marketing")


@pytest.mark.django_db
def test_unknown_permission_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(roles.ROLE_PERMISSIONS, roles.MARKETING, {"members.fly_member"})
    with pytest.raises(roles.UnknownPermission, match="members.fly_member"):
        roles.roles_sync()


@pytest.mark.django_db
def test_landing_page_links_only_what_the_role_may_use(client, staff_user):
    service = staff_user("Customer service")
    client.force_login(service)
    page = client.get("/").content.decode()
    assert 'href="/members/"' in page  # the member search (loyalty_site/member_views.py)
    assert "/admin/auth/user/" not in page

    client.force_login(staff_user("Administrator"))
    page = client.get("/").content.decode()
    assert "/admin/auth/user/" in page


@pytest.mark.django_db
def test_landing_page_requires_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.fixture
def administrator(staff_user):
    return staff_user("Administrator")


@pytest.mark.django_db
def test_administrator_cannot_make_itself_superuser(client, administrator):
    client.force_login(administrator)
    url = f"/admin/auth/user/{administrator.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200
    assert 'name="is_superuser"' not in page.content.decode()

    response = client.post(
        url,
        {
            "username": administrator.username,
            "first_name": administrator.first_name,
            "last_name": administrator.last_name,
            "email": "",
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "groups": [Group.objects.get(name="Administrator").pk],
            "user_permissions": [Permission.objects.get(codename="delete_member").pk],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "10:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    administrator.refresh_from_db()
    assert not administrator.is_superuser
    assert not administrator.user_permissions.exists()


@pytest.mark.django_db
def test_superuser_may_grant_superuser(client, administrator):
    from tests.factories import UserFactory

    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    page = client.get(f"/admin/auth/user/{administrator.pk}/change/")
    assert 'name="is_superuser"' in page.content.decode()
    assert 'name="user_permissions"' in page.content.decode()


@pytest.mark.django_db
def test_administrator_cannot_change_group_permissions(client, administrator):
    client.force_login(administrator)
    group = Group.objects.get(name="Marketing")
    before = _codes("Marketing")
    response = client.post(
        f"/admin/auth/group/{group.pk}/change/",
        {"name": "Marketing", "permissions": [Permission.objects.get(codename="delete_member").pk]},
    )
    assert response.status_code == 403
    assert _codes("Marketing") == before
    assert "auth.change_group" not in _codes("Administrator")
    assert "auth.change_permission" not in _codes("Administrator")


@pytest.mark.django_db
def test_setup_roles_removes_permissions_given_to_a_user(staff_user):
    from django.contrib.auth import get_user_model

    service = staff_user("Customer service")
    service.user_permissions.add(Permission.objects.get(codename="delete_member"))
    call_command("setup_roles", stdout=io.StringIO())
    service = get_user_model().objects.get(pk=service.pk)  # has_perm caches per instance
    assert not service.user_permissions.exists()
    assert not service.has_perm("members.delete_member")
    assert service.has_perm("members.change_member")
