"""Conditions on what members did besides buying: engagement events, challenges, badges; and
membership of another segment."""

from dataclasses import replace

from django.db.models import Count, Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from campaigns.models import ChallengeProgress, EngagementEvent, MemberBadge
from campaigns.segments import Condition, compile_node, invalid, params, register

# An event counts once it was approved (credited events were approved and paid out).
COUNTED_EVENTS = (EngagementEvent.Status.APPROVED, EngagementEvent.Status.CREDITED)


def _check_engagement(node: dict) -> None:
    params.names(node, "in")
    params.check_bounds(node, required=False)
    params.check_window(node)


def _compile_engagement(node: dict, context) -> Q:
    """At least `min` (default 1), at most `max` approved events of the kinds (by code)."""
    events = EngagementEvent.objects.filter(
        params.window_q("created_at", node.get("window"), context.now),
        member=OuterRef("pk"),
        kind__code__in=node["in"],
        status__in=COUNTED_EVENTS,
    )
    if "max" not in node and node.get("min", 1) == 1:
        return Q(Exists(events))
    count = Coalesce(
        Subquery(events.order_by().values("member").annotate(n=Count("pk")).values("n")), 0
    )
    return params.bounds_q(count, node, default_min=1)


register(
    Condition(
        name="engagement",
        label=_("Engagement events of a kind"),
        check=_check_engagement,
        compile=_compile_engagement,
    )
)


def _check_challenges(node: dict) -> None:
    if "in" in node:
        params.ids(node, "in")
    params.check_window(node)


def _compile_challenges(node: dict, context) -> Q:
    """Completed one of the challenges (by id; any challenge without "in"), in the window."""
    done = ChallengeProgress.objects.filter(
        params.window_q("completed_at", node.get("window"), context.now),
        member=OuterRef("pk"),
        completed_at__isnull=False,
    )
    if "in" in node:
        done = done.filter(challenge__in=node["in"])
    return Q(Exists(done))


register(
    Condition(
        name="challenge_completed",
        label=_("Completed a challenge"),
        check=_check_challenges,
        compile=_compile_challenges,
    )
)

register(
    Condition(
        name="badge",
        label=_("Holds a badge"),
        check=lambda node: params.names(node, "in"),
        compile=lambda node, context: Q(
            Exists(MemberBadge.objects.filter(member=OuterRef("pk"), badge__code__in=node["in"]))
        ),
    )
)


def _check_segment(node: dict) -> None:
    # Whether the segment exists, and whether it leads back here, `validate` asks the database.
    if type(node.get("id")) is not int:
        raise invalid(_("Condition “segment” needs “id”: a segment's id."))


def _compile_segment(node: dict, context) -> Q:
    """The referenced segment's own tree, inlined: still one statement."""
    definition = context.definitions.get(node["id"])
    # Deleted since validation, or a cycle saved around validation: it selects nobody.
    if definition is None or node["id"] in context.chain:
        return Q(pk__in=[])
    return compile_node(definition, replace(context, chain=(*context.chain, node["id"])))


register(
    Condition(
        name="segment",
        label=_("Member of another segment"),
        check=_check_segment,
        compile=_compile_segment,
    )
)
