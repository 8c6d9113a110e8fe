"""The error vocabulary's form helper: a service's refusal shown on a form."""

from django import forms

from loyalty_site.errors import Conflict, DomainError, form_error


class _Form(forms.Form):
    reason = forms.CharField(required=False)


def test_form_error_puts_field_refusals_on_their_fields_and_the_rest_on_the_form():
    form = _Form({"reason": ""})
    form.is_valid()
    form_error(form, DomainError(fields={"reason": "A reason is required.", "gone": "Elsewhere."}))
    assert form.errors == {"reason": ["A reason is required."], "__all__": ["Elsewhere."]}
    other = _Form({})
    other.is_valid()
    form_error(other, Conflict("Not now."))
    assert other.non_field_errors() == ["Not now."]
