"""The exports page (/exports/): pick an export, its filters and a format; it runs as a job.

Each export has its own permissions (loyalty_site.exports.EXPORTS); the page offers only those
the user may run and refuses (403) any other. The user's recent export jobs are listed with
their status and download links.
"""

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign
from loyalty_site import exports
from members.background import job_start
from members.models import BackgroundJob
from rewards.models import Redemption

RECENT_JOBS = 10


class ExportForm(forms.Form):
    export = forms.ChoiceField(label=_("Export"))
    file_format = forms.ChoiceField(
        label=_("Format"), choices=list(exports.FORMATS.items()), initial="csv"
    )
    date_from = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label=_("Until"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    campaign = forms.ModelChoiceField(
        label=_("Campaign"),
        queryset=Campaign.objects.order_by("-created_at", "-id"),
        required=False,
        help_text=_("Campaign messages and results only."),
    )
    status = forms.ChoiceField(
        label=_("Shipping status"),
        choices=[("", _("any")), *Redemption.FulfilmentStatus.choices[1:]],
        required=False,
        initial=Redemption.FulfilmentStatus.TO_SHIP,
        help_text=_("Shipping list only."),
    )

    def __init__(self, *args, specs, **kwargs):
        super().__init__(*args, **kwargs)
        self.specs = {spec.key: spec for spec in specs}
        self.fields["export"].choices = [(spec.key, spec.label) for spec in specs]
        wanted = {name for spec in specs for name in spec.filters}
        if "campaign" not in wanted:
            del self.fields["campaign"]
        if "status" not in wanted:
            del self.fields["status"]

    def clean(self):
        cleaned = super().clean()
        spec = self.specs.get(cleaned.get("export"))
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        if spec is not None and "campaign" in spec.filters and not cleaned.get("campaign"):
            self.add_error("campaign", _("Choose the campaign to export."))
        return cleaned

    def params(self) -> dict:
        data = self.cleaned_data
        spec = self.specs[data["export"]]
        params = {"format": data["file_format"], "language": get_language()}
        if data.get("date_from"):
            params["date_from"] = data["date_from"].isoformat()
        if data.get("date_to"):
            params["date_to"] = data["date_to"].isoformat()
        if "campaign" in spec.filters:
            params["campaign"] = data["campaign"].pk
        if "status" in spec.filters:
            params["status"] = data.get("status") or ""
        return params


@login_required
def exports_page(request):
    specs = exports.exports_for(request.user)
    if not specs:
        raise PermissionDenied
    if request.method == "POST":
        chosen = request.POST.get("export")
        if chosen in exports.EXPORTS and not exports.EXPORTS[chosen].allowed(request.user):
            raise PermissionDenied
        form = ExportForm(request.POST, specs=specs)
        if form.is_valid():
            job = job_start(
                exports.job_kind_name(form.cleaned_data["export"]), form.params(), request.user
            )
            return redirect("job", job.pk)
    else:
        # A list page links here with its filters (the shipping list: export, status, dates).
        wanted = {
            key: request.GET[key]
            for key in ("export", "status", "date_from", "date_to")
            if request.GET.get(key) is not None
        }
        form = ExportForm(specs=specs, initial=wanted)
    kinds = [exports.job_kind_name(spec.key) for spec in exports.EXPORTS.values()]
    jobs = list(
        BackgroundJob.objects.filter(requested_by=request.user, kind__in=kinds).order_by(
            "-created_at", "-id"
        )[:RECENT_JOBS]
    )
    labels = {exports.job_kind_name(key): spec.label for key, spec in exports.EXPORTS.items()}
    for job in jobs:
        job.label = labels.get(job.kind, job.kind)
    return render(request, "exports/exports.html", {"form": form, "jobs": jobs})
