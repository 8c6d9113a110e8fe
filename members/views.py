"""The members app's back-office pages (routes in members/urls.py, templates in
templates/members/). The member search and the member page span every app and live in
loyalty_site; here is the tier ladder."""

from datetime import timedelta

from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from members import selectors

# How far back the page counts tier moves.
TIER_MOVES_DAYS = 30


@login_required
@permission_required("members.view_tier", raise_exception=True)
@require_GET
def tiers(request):
    """The tier ladder, read-only: each tier's rules, its members now and the moves up and down
    of the last TIER_MOVES_DAYS days. Editing is the admin's (Administrator only)."""
    since = timezone.now() - timedelta(days=TIER_MOVES_DAYS)
    steps = selectors.tier_ladder(since=since)
    context = {
        "steps": steps,
        "days": TIER_MOVES_DAYS,
        "since": since,
        "members": sum(step.members for step in steps),
        "moved_up": sum(step.moved_up for step in steps),
        "moved_down": sum(step.moved_down for step in steps),
        "may_edit": request.user.has_perm("members.change_tier"),
        "may_add": request.user.has_perm("members.add_tier"),
    }
    return render(request, "members/tiers.html", context)
