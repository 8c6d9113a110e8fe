import pytest
from hypothesis import settings as hypothesis_settings

from loyalty_site.celery import app as celery_app

# Property tests check behaviour, not speed (bench/ measures speed): no per-example deadline,
# which a busy CI machine would otherwise turn into a failure now and then.
hypothesis_settings.register_profile("loyalty", deadline=None)
hypothesis_settings.load_profile("loyalty")


@pytest.fixture(autouse=True, scope="session")
def _celery_eager():
    # Tasks run in-process in tests; a test of a task calls it and sees its effect at once.
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield


@pytest.fixture(autouse=True)
def _config_cache_off(settings):
    # A test sees the rules, tiers and keys it has just written; tests of the cache turn it on.
    from members import config_cache

    settings.LOYALTY_CONFIG_CACHE_SECONDS = 0
    config_cache.clear()
    yield
    config_cache.clear()


@pytest.fixture
def roles(db):
    from loyalty_site.roles import roles_sync

    roles_sync()


@pytest.fixture
def staff_user(db, roles):
    """A factory: staff_user("Finance") is a signed-in-able staff user with that role."""
    from django.contrib.auth.models import Group

    from tests.factories import UserFactory

    def make(role: str, **kwargs):
        user = UserFactory(is_staff=True, **kwargs)
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture(autouse=True)
def _language_reset():
    # A request with Accept-Language: nl leaves Dutch active in the thread; the next test on the
    # same worker must start from the configured language.
    yield
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


def pytest_collection_modifyitems(config, items):
    """On SQLite (the embedded mode's database, run by .ci/run for the ledger, campaigns and
    API tests), tests that commit for real are left to the PostgreSQL run: they test
    concurrency across connections, which SQLite serialises, and pytest-django empties their
    tables with DELETE, which the ledger's append-only triggers refuse."""
    from django.conf import settings

    if "sqlite" not in settings.DATABASES["default"]["ENGINE"]:
        return
    skip = pytest.mark.skip(reason="commits across connections: run on PostgreSQL")
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker is not None and marker.kwargs.get("transaction"):
            item.add_marker(skip)


@pytest.fixture
def service(client, staff_user):
    """A signed-in customer service agent (the admin tests of members and loyalty_site)."""
    user = staff_user("Customer service")
    client.force_login(user)
    return user


@pytest.fixture
def anna(db):
    from members.services import member_enrol

    return member_enrol(
        email="anna.devries@example.nl",
        first_name="Anna",
        last_name="de Vries",
        phone="0612345678",
        external_id="LEG-42",
    )
