"""An optional "reason for this change" on the configuration's admin forms.

The configuration's change log is django-auditlog's (registered in each app's ``apps.py``): it
records who changed which field from what to what, but a model's save has no reason to give. The
admin's form asks for one; while the admin saves the object and its inlines, the reason sits in
a context variable, and every log entry written meanwhile (in this thread or task only) carries
it in ``additional_data["reason"]``, which the audit log page (/audit/) shows.

It lives in members, the lowest app, so that every app's admin may use it.
"""

from contextlib import contextmanager
from contextvars import ContextVar

from auditlog.models import LogEntry
from django import forms
from django.db.models.signals import pre_save
from django.utils.translation import gettext_lazy as _

FIELD = "change_reason"

_reason: ContextVar[str] = ContextVar("configuration_change_reason", default="")


def _reason_stamp(sender, instance, **kwargs):
    reason = _reason.get()
    if reason and instance._state.adding:
        data = instance.additional_data if isinstance(instance.additional_data, dict) else {}
        instance.additional_data = {**data, "reason": reason}


pre_save.connect(_reason_stamp, sender=LogEntry, dispatch_uid="members.change_reason")


@contextmanager
def change_reason(reason: str):
    """Every configuration log entry written inside the block records `reason`."""
    token = _reason.set((reason or "").strip())
    try:
        yield
    finally:
        _reason.reset(token)


class ChangeReasonAdmin:
    """Admin mixin (put it first): a last, optional "Reason for this change" field."""

    def _may_edit(self, request, obj) -> bool:
        if obj is None:
            return self.has_add_permission(request)
        return self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (name, {**options, "fields": [f for f in options["fields"] if f != FIELD]})
            for name, options in super().get_fieldsets(request, obj)
        ]
        if self._may_edit(request, obj):
            fieldsets.append((_("Audit log"), {"fields": [FIELD]}))
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        if kwargs.get("fields") is not None:
            kwargs["fields"] = [f for f in kwargs["fields"] if f != FIELD]
        form = super().get_form(request, obj, change=change, **kwargs)
        reason = forms.CharField(
            label=_("Reason for this change"),
            required=False,
            max_length=255,
            help_text=_("Optional; shown with the change in the audit log."),
        )
        return type(form.__name__, (form,), {FIELD: reason})

    def save_model(self, request, obj, form, change):
        with change_reason(form.cleaned_data.get(FIELD, "")):
            super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        with change_reason(form.cleaned_data.get(FIELD, "")):
            super().save_related(request, form, formsets, change)
