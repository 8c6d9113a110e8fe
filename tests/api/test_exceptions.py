"""The API's one error body: every service refusal keeps its code and its status."""

import pytest
from django.utils import translation

from loyalty_site.api.exceptions import api_exception_handler
from tests.test_errors import domain_error_classes


@pytest.mark.parametrize("error", domain_error_classes(), ids=lambda cls: cls.__qualname__)
def test_every_domain_error_is_answered_with_its_code_and_status(error):
    with translation.override("en"):
        response = api_exception_handler(error(fields={"field": "why"}), {})
        assert response.status_code == error.status
        assert response.data == {
            "code": error.code,
            "detail": str(error.default_detail),
            "fields": {"field": ["why"]},
        }


def test_a_code_given_when_raised_is_the_answers():
    from loyalty_site.errors import Conflict

    response = api_exception_handler(Conflict(code="card_number_taken"), {})
    assert (response.status_code, response.data["code"]) == (409, "card_number_taken")
