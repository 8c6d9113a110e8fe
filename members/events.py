"""Domain events: each change that the outside world may subscribe to, announced by the one
service that makes it, whatever called that service (API, back-office page, admin, command,
task).

A service calls ``event_emit`` (or ``events_emit`` for a set-based job) inside its own
transaction. The apps do not know who listens: they may not import ``loyalty_site``
(DESIGN.md §2), so the announcement is a signal. ``loyalty_site.webhooks`` listens: it records
one delivery per matching subscription in the same transaction (an outbox: a write that rolls
back announces nothing, a committed one always has its deliveries) and sends them once the
transaction commits (``transaction.on_commit``).

The vocabulary lives here, in the lowest app, so that every app can name the types it emits.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.dispatch import Signal
from django.utils.translation import gettext_lazy as _

EVENT_TYPES = {
    "member.enrolled": _("Member enrolled"),
    "tier.changed": _("Tier changed"),
    "points.earned": _("Points earned"),
    "redemption.confirmed": _("Redemption confirmed"),
    "points.expiring_soon": _("Points expiring soon"),
}

# Sent with ``events``: a list of Event, all of one transaction.
events_emitted = Signal()


@dataclass(frozen=True)
class Event:
    type: str
    data: dict = field(default_factory=dict)
    # The channel that made the change ("" for staff and jobs): a subscription hears its own
    # channel's events, or every channel's when it asks for all.
    channel: str = ""
    # Set when the same announcement must go out once however often it is made (a job that
    # runs twice): one delivery per subscription and key.
    dedupe_key: str = ""

    def __post_init__(self):
        if self.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {self.type!r}")


def events_emit(*, events: Iterable[Event]) -> None:
    """Announce many events of one transaction at once (set-based jobs)."""
    events = list(events)
    if events:
        events_emitted.send(sender=Event, events=events)


def event_emit(*, event_type: str, data: dict, channel: str = "", dedupe_key: str = "") -> None:
    """Announce one change, inside the transaction that makes it."""
    events_emit(events=[Event(type=event_type, data=data, channel=channel, dedupe_key=dedupe_key)])
