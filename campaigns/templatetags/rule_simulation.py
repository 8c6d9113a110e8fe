"""The rule simulator's chart, built when the result is shown (in the reader's language).

The result is a background job's JSON (campaigns.views.rules.rule_simulate_job), rendered by the
job's fragment, which has no view of ours to build the Chart.js configuration in.
"""

from datetime import date

from django import template
from django.utils.translation import gettext

register = template.Library()


@register.simple_tag
def rule_simulation_chart(result: dict) -> dict:
    """Chart.js configuration: the rule's points per day (bars) and the change in everything
    the programme would have given (a line)."""
    return {
        "type": "bar",
        "data": {
            "labels": result["days"],
            "datasets": [
                {
                    "label": gettext("Points given by this rule"),
                    "data": result["points_by_day"],
                    "backgroundColor": "#0b6e4f",
                },
                {
                    "type": "line",
                    "label": gettext("Change in the programme's points"),
                    "data": result["change_by_day"],
                    "borderColor": "#8a5a00",
                    "backgroundColor": "#8a5a00",
                    "pointRadius": 0,
                    "borderWidth": 1.5,
                },
            ],
        },
        "options": {
            "scales": {"x": {"ticks": {"maxTicksLimit": 12}}, "y": {"beginAtZero": True}},
            "plugins": {"legend": {"position": "bottom"}},
        },
    }


@register.filter
def busiest_days(result: dict, count: int = 10) -> list[tuple[date, int, int]]:
    """(day, the rule's points, the programme's change) of the days the rule gave most on."""
    days = zip(result["days"], result["points_by_day"], result["change_by_day"], strict=True)
    ranked = sorted((d for d in days if d[1] or d[2]), key=lambda d: (-d[1], d[0]))
    return [(date.fromisoformat(day), points, change) for day, points, change in ranked[:count]]


@register.filter
def iso_date(value: str | None) -> date | None:
    """A date stored as ISO text in a job's result, for the `date` filter."""
    return date.fromisoformat(value) if value else None
