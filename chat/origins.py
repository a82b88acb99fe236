"""Which web origins may talk to the chat (PROTOCOL.md; SPEC §1.6).

reflib's own origin (the widget panel and the desk are served from it) is always allowed; a
library's allowed embedding origins are allowed for that library's queues and conversations.
``null`` (sandboxed frames, file: pages) is never allowed. A request without an Origin header
does not come from a browser page, so no page can have forged it: it is allowed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from reflib.models import AllowedOrigin
from reflib.validators import normalize_origin


def normalized(origin: str) -> str | None:
    try:
        return normalize_origin(origin)
    except ValidationError:
        return None


def is_own(origin: str, host: str) -> bool:
    """``origin`` is this installation: same host[:port] as the request, or REFLIB_BASE_URL."""
    value = normalized(origin)
    if value is None:
        return False
    if value == normalize_origin(settings.REFLIB_BASE_URL):
        return True
    netloc = urlsplit(value).netloc
    return bool(host) and netloc == host.lower().removesuffix(":80").removesuffix(":443")


def is_allowed(origin: str | None, *, host: str, library_id: int | None) -> bool:
    if origin is None:
        return True
    if is_own(origin, host):
        return True
    value = normalized(origin)
    if value is None or library_id is None:
        return False
    return AllowedOrigin.objects.filter(library_id=library_id, origin=value).exists()


def is_allowed_anywhere(origin: str | None, *, host: str) -> bool:
    """Before a library is known (a WebSocket handshake): own, or some library's origin."""
    if origin is None or is_own(origin, host):
        return True
    value = normalized(origin)
    return value is not None and AllowedOrigin.objects.filter(origin=value).exists()
