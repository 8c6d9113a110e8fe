"""Marketing's segment pages: the list, and the builder with its live preview.

The builder edits the segment's JSON tree as a form (campaigns.campaign_forms); htmx adds and
removes its rows (the server draws each new row) and posts the whole form to the preview on
every change, which answers with the count, the reachable members per channel and a sample, or
with `validate`'s message for a tree that is not valid yet. The count is the one COUNT of the
compiled query (segment_reachable counts the total and each channel in the same statement).
Saving goes through `segment_save`, freezing a snapshot through a background job.
"""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST

from campaigns import segments, services
from campaigns.campaign_forms import (
    GROUP_LABELS,
    GROUP_TYPES,
    NEW_CONDITION,
    NODE_ID,
    BuilderNode,
    Choices,
    SegmentForm,
    builder_tree,
    condition_node,
    definition_from_post,
    new_node_id,
)
from campaigns.models import Campaign, EarningRule, Segment, SegmentSnapshot
from campaigns.segments import fields as segment_fields
from campaigns.segments.rfm import PRESET_LABELS
from members import background

SAMPLE_SIZE = 10
PAGE_SIZE = 25


def member_url(member) -> str:
    """The member's page (customer service's member page)."""
    return reverse("member-page", args=[member.pk])


def _builder_context() -> dict:
    return {
        "condition_choices": segment_fields.condition_choices(),
        "group_choices": [(key, GROUP_LABELS[key]) for key in GROUP_TYPES],
    }


def _preset_names() -> dict[str, str]:
    # The presets are named in the programme's language when created (segment_presets_ensure).
    with translation.override(settings.LANGUAGE_CODE):
        return {
            key: gettext("RFM: %(preset)s") % {"preset": label}
            for key, label in PRESET_LABELS.items()
        }


# -- the list ------------------------------------------------------------------------------------


@login_required
@permission_required("campaigns.view_segment", raise_exception=True)
def segment_list(request):
    """Every segment with its last snapshot (no live count per row: each would scan the members;
    the row's *Count* button asks for one)."""
    latest = SegmentSnapshot.objects.filter(segment=OuterRef("pk")).order_by("-taken_at", "-id")
    segments_qs = (
        Segment.objects.annotate(
            snapshot_at=Subquery(latest.values("taken_at")[:1]),
            snapshot_size=Subquery(latest.values("size")[:1]),
        )
        .prefetch_related(
            Prefetch(
                "campaigns", queryset=Campaign.objects.only("pk", "name", "status", "segment")
            ),
            Prefetch("earning_rules", queryset=EarningRule.objects.only("pk", "name")),
        )
        .order_by("name")
    )
    page = Paginator(segments_qs, PAGE_SIZE).get_page(request.GET.get("page"))
    presets = _preset_names()
    have = Segment.objects.filter(name__in=presets.values()).count()
    return render(
        request,
        "campaigns/segments/list.html",
        {"page": page, "presets_missing": have < len(presets)},
    )


@login_required
@permission_required("campaigns.view_segment", raise_exception=True)
@require_GET
def segment_count(request, segment_id: int):
    """One saved segment's size now (the list's *Count* button): one COUNT query, and what its
    RFM conditions read (the nightly scores or a live ranking), if it has any."""
    segment = get_object_or_404(Segment, pk=segment_id)
    try:
        count = segments.segment_count(segment)
    except ValidationError as error:
        return HttpResponse(" ".join(error.messages))
    context = {"count": count, "rfm_basis": segments.segment_rfm_basis(segment)}
    return render(request, "campaigns/segments/count.html", context)


@login_required
@permission_required("campaigns.add_segment", raise_exception=True)
@require_POST
def segment_presets(request):
    created = services.segment_presets_ensure(actor=request.user)
    messages.success(
        request,
        gettext("%(count)s RFM preset segments created.") % {"count": created},
    )
    return redirect("segment-list")


# -- the builder ---------------------------------------------------------------------------------


def _starting_definition(request) -> tuple[dict, str]:
    """A new segment's tree: from a preset, a copy of a saved segment, or empty."""
    preset = request.GET.get("preset")
    if preset in PRESET_LABELS:
        return {"all": [{"condition": "rfm", "segment": preset}]}, str(PRESET_LABELS[preset])
    copy = request.GET.get("from", "")
    if copy.isdigit():
        source = Segment.objects.filter(pk=int(copy)).only("name", "definition").first()
        if source is not None:
            return source.definition, source.name
    return {"all": []}, ""


def _render_builder(request, *, segment, form, tree: BuilderNode, status: int = 200):
    context = {
        "segment": segment,
        "form": form,
        "tree": tree,
        "presets": list(PRESET_LABELS.items()),
        "can_change": request.user.has_perm(
            "campaigns.change_segment" if segment else "campaigns.add_segment"
        ),
        **_builder_context(),
    }
    if segment is not None:
        context["snapshots"] = list(SegmentSnapshot.objects.filter(segment=segment)[:5])
        context["campaigns"] = list(segment.campaigns.only("pk", "name", "status"))
        context["rules"] = list(segment.earning_rules.only("pk", "name"))
    else:
        context["copyable"] = list(Segment.objects.only("pk", "name").order_by("name")[:200])
    return render(request, "campaigns/segments/builder.html", context, status=status)


def _save(request, segment: Segment | None):
    form = SegmentForm(request.POST)
    try:
        definition = definition_from_post(request.POST)
    except ValidationError as error:
        form.add_error(None, error)
        definition = segment.definition if segment else {"all": []}
    if form.is_valid():
        try:
            saved = services.segment_save(
                segment=segment,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                definition=definition,
                actor=request.user,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as error:
            _errors_to_form(form, error)
        else:
            messages.success(request, gettext("Segment “%(name)s” saved.") % {"name": saved.name})
            return redirect("segment-edit", segment_id=saved.pk)
    return _render_builder(
        request, segment=segment, form=form, tree=builder_tree(definition), status=400
    )


def _errors_to_form(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for name, problems in error.error_dict.items():
            target = name if name in form.fields else None
            for problem in problems:
                form.add_error(target, problem)
    else:
        form.add_error(None, error)


@login_required
@permission_required("campaigns.add_segment", raise_exception=True)
def segment_new(request):
    if request.method == "POST":
        return _save(request, None)
    definition, name = _starting_definition(request)
    form = SegmentForm(initial={"name": name})
    return _render_builder(request, segment=None, form=form, tree=builder_tree(definition))


@login_required
@permission_required("campaigns.view_segment", raise_exception=True)
def segment_edit(request, segment_id: int):
    segment = get_object_or_404(Segment, pk=segment_id)
    if request.method == "POST":
        if not request.user.has_perm("campaigns.change_segment"):
            raise PermissionDenied
        return _save(request, segment)
    form = SegmentForm(initial={"name": segment.name, "description": segment.description})
    return _render_builder(
        request, segment=segment, form=form, tree=builder_tree(segment.definition)
    )


# -- the builder's htmx parts --------------------------------------------------------------------


def _changed(response: HttpResponse) -> HttpResponse:
    # The builder's form listens for this event and posts itself to the preview.
    response["HX-Trigger"] = "segment-changed"
    return response


@login_required
@permission_required("campaigns.view_segment", raise_exception=True)
@require_GET
def segment_node_new(request):
    """A new row (a condition) or group, drawn by the server, appended under `parent`."""
    parent = request.GET.get("parent", "")
    if not NODE_ID.match(parent):
        return HttpResponseBadRequest()
    node_id = new_node_id()
    if request.GET.get("type") == "group":
        node = BuilderNode(id=node_id, parent=parent, type="all")
    else:
        node = condition_node(node_id, parent, NEW_CONDITION, {}, Choices())
    context = {"node": node, **_builder_context()}
    return _changed(render(request, "campaigns/segments/node.html", context))


@login_required
@permission_required("campaigns.view_segment", raise_exception=True)
@require_GET
def segment_node_params(request):
    """A condition row's parameter inputs, for the kind just picked."""
    node_id = request.GET.get("node", "")
    if not NODE_ID.match(node_id):
        return HttpResponseBadRequest()
    condition = request.GET.get(f"{node_id}-condition", "")
    node = condition_node(node_id, "", condition, {}, Choices())
    return _changed(render(request, "campaigns/segments/params.html", {"node": node}))


@login_required
@permission_required("campaigns.view_segment", raise_exception=True)
@require_GET
def segment_node_remove(request):
    """Nothing: the row's button swaps itself away (hx-swap="delete"); the answer only tells
    the form to refresh its preview."""
    return _changed(HttpResponse(""))


@login_required
@permission_required("campaigns.view_segment", raise_exception=True)
@require_POST
def segment_preview(request):
    """The count, reachable members per channel and a sample for the tree the form describes;
    the validation message for a tree that is not valid (never an error page)."""
    context = {"errors": [], "definition": None}
    try:
        definition = definition_from_post(request.POST)
        context["definition"] = json.dumps(definition, indent=2, ensure_ascii=False)
        segment_id = request.POST.get("segment", "")
        segments.validate(definition, segment_id=int(segment_id) if segment_id.isdigit() else None)
        reach = segments.segment_reachable(definition)
        sample = list(segments.segment_sample(definition, size=SAMPLE_SIZE))
        rfm_basis = segments.segment_rfm_basis(definition)
    except ValidationError as error:
        context["errors"] = error.messages
    else:
        context["reach"] = reach
        context["rfm_basis"] = rfm_basis
        context["sample"] = [{"member": m, "url": member_url(m)} for m in sample]
    return render(request, "campaigns/segments/preview.html", context)


# -- snapshots: a background job -----------------------------------------------------------------


@background.job_kind(
    "campaigns.segment_snapshot",
    label=_("Segment snapshot"),
    permission="campaigns.add_segmentsnapshot",
    result_template="campaigns/segments/snapshot_result.html",
)
def _snapshot_job(job, progress):
    segment = Segment.objects.filter(pk=job.params["segment"]).first()
    if segment is None:
        raise background.JobRefused(gettext("The segment was deleted."))
    try:
        snapshot = services.segment_snapshot_take(definition=segment.definition, segment=segment)
    except ValidationError as error:
        raise background.JobRefused(" ".join(error.messages)) from error
    return {"segment": segment.pk, "name": segment.name, "size": snapshot.size}


@login_required
@permission_required("campaigns.add_segmentsnapshot", raise_exception=True)
@require_POST
def segment_snapshot(request, segment_id: int):
    """Freeze the segment's members of this moment (one INSERT … SELECT, in the worker)."""
    segment = get_object_or_404(Segment, pk=segment_id)
    job = background.job_start("campaigns.segment_snapshot", {"segment": segment.pk}, request.user)
    return redirect("job", job_id=job.pk)
