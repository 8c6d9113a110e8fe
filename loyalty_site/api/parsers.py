"""The API's JSON parser: refuses, as a 400 or 413, what would otherwise fail deep inside.

DRF's parser reads the request stream itself, so Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (which
only guards ``request.body``) never applies to a JSON body: the limit is enforced here. A NUL
character or an unpaired surrogate (``"\\ud800"``) anywhere in the body cannot be stored by
PostgreSQL, nor rendered as UTF-8 in an error that names it, and is never meaningful to the
programme; a body nested deeper than Python's recursion limit raises ``RecursionError``.
"""

import json
import re

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, parsers, status


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"
    default_detail = _("The request body is too large.")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(raw) > limit:
            raise RequestTooLarge()
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            data = json.loads(raw.decode(encoding))
            # Both can only arrive escaped (raw, they are invalid UTF-8 or invalid JSON), and
            # their escapes are rare: a look at the bytes, and a closer look only when they
            # occur. ensure_ascii=False keeps an unpaired surrogate as itself, which then fails
            # to encode.
            if _SURROGATE_ESCAPE.search(raw):
                json.dumps(data, ensure_ascii=False).encode("utf-8")
        except RecursionError:
            raise exceptions.ParseError(_("The JSON body is nested too deeply.")) from None
        except UnicodeError:
            raise exceptions.ParseError(
                _("The body contains an unpaired surrogate or is not valid UTF-8.")
            ) from None
        except ValueError as exc:
            raise exceptions.ParseError(_("JSON parse error: %(error)s") % {"error": exc}) from None
        # The escape may also be a string's literal backslash followed by "u0000": look closer.
        if b"\\u0000" in raw and _has_nul(data):
            raise exceptions.ParseError(_("The body contains a NUL character."))
        return data


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False
