"""The staff audit log: who changed what about a member, when and why."""

from members.models import (
    AuditEntry,
    Member,
)


def audit_record(
    *,
    actor,
    action: str,
    member: Member | None = None,
    reason: str = "",
    details: dict | None = None,
) -> AuditEntry:
    """One line of the staff audit log. ``details`` must hold no personal values."""
    return AuditEntry.objects.create(
        actor=actor, action=action, member=member, reason=reason, details=details or {}
    )
