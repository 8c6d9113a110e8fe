"""The one error vocabulary.

Services raise a ``DomainError`` subclass (or ``DomainError`` with a code) when they refuse an
action. The API's exception handler turns it into a 4xx JSON body
``{"code": ..., "detail": ..., "fields": {...}}`` and ``form_error`` turns it into a form error;
commands print ``detail`` on one line. This module imports no app, so every app may use it.
"""

from django.utils.translation import gettext_lazy as _


class DomainError(Exception):
    """A refusal by a service, with a stable machine-readable code."""

    code = "invalid"
    status = 422
    default_detail = _("The request could not be carried out.")

    def __init__(self, detail=None, *, code: str | None = None, fields: dict | None = None):
        self.detail = detail if detail is not None else self.default_detail
        if code is not None:
            self.code = code
        self.fields = fields or {}
        super().__init__(str(self.detail))


class NotFound(DomainError):
    code = "not_found"
    status = 404
    default_detail = _("Not found.")


class Conflict(DomainError):
    """The action clashes with the current state (e.g. not enough points, already confirmed)."""

    code = "conflict"
    status = 409
    default_detail = _("The request conflicts with the current state.")


def form_error(form, error: DomainError) -> None:
    """Show a service's refusal on a form: on the named fields, else as a non-field error."""
    if error.fields:
        for field, message in error.fields.items():
            form.add_error(field if field in form.fields else None, message)
    else:
        form.add_error(None, error.detail)
