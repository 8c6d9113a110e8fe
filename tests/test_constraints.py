"""Every database constraint a form can hit speaks to the user, in their language."""

import pytest
from django.apps import apps
from django.urls import reverse
from django.utils.functional import Promise

from tests.factories import MemberFactory

PROJECT_APPS = {"campaigns", "ledger", "members", "rewards", "loyalty_site"}


def project_constraints():
    for model in apps.get_models():
        if model._meta.app_label in PROJECT_APPS:
            for constraint in model._meta.constraints:
                yield model, constraint


def test_the_walk_finds_the_constraints():
    assert len(list(project_constraints())) > 40


@pytest.mark.parametrize(
    ("model", "constraint"),
    list(project_constraints()),
    ids=lambda v: getattr(v, "name", getattr(v, "__name__", "")),
)
def test_every_constraint_has_its_own_translatable_message(model, constraint):
    # Django's default names the constraint ("Constraint “adjreq_points_not_0” is violated.").
    message = constraint.violation_error_message
    assert message != constraint.default_violation_error_message
    assert isinstance(message, Promise), "translate it with gettext_lazy"
    assert constraint.name not in str(message)


@pytest.mark.django_db
def test_the_admin_shows_a_constraint_refusal_in_dutch(client, staff_user):
    MemberFactory(email="anna@example.nl")
    client.force_login(staff_user("Customer service"))
    response = client.post(
        reverse("admin:members_member_add"),
        {"email": "Anna@Example.nl", "first_name": "Anna", "locale": "nl", "status": "active",
         "profile": "{}", "cards-TOTAL_FORMS": "0", "cards-INITIAL_FORMS": "0",
         "consents-TOTAL_FORMS": "0", "consents-INITIAL_FORMS": "0",
         "tier_history-TOTAL_FORMS": "0", "tier_history-INITIAL_FORMS": "0"},
        HTTP_ACCEPT_LANGUAGE="nl",
    )  # fmt: skip
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["__all__"] == ["Er is al een lid ingeschreven met dit e-mailadres."]
