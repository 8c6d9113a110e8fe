"""Scopes: each view action names the scope a channel's key must hold."""

from rest_framework.permissions import BasePermission


class ChannelScope(BasePermission):
    """Grants an action when the channel holds `view.required_scopes[view.action]`.

    An action that names no scope is refused, so a new action cannot be open by accident.
    """

    def has_permission(self, request, view) -> bool:
        channel = getattr(request.user, "channel", None)
        if channel is None:
            return False
        action = getattr(view, "action", None)
        if action is None or action == "metadata":
            # No handler for this method: let the view answer 405 instead of a misleading 403.
            return True
        scope = getattr(view, "required_scopes", {}).get(action)
        return scope is not None and channel.has_scope(scope)


def channel_of(request):
    return request.user.channel
