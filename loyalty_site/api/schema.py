"""drf-spectacular post-processing for the channel API's schema."""


def strict_request_bodies(result, generator, request, public):
    """Request bodies refuse unknown fields (StrictSerializer), so the schema says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
