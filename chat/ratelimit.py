"""The chat's one rate-limit check, shared by the sockets and the HTTP API."""

from __future__ import annotations

from chat.errors import ChatError
from reflib import ratelimit


def check_rate(*, key: str, limit: tuple[int, int], detail: str) -> None:
    """Count one more action of ``key``; ``rate_limited`` (with the wait) over ``limit``."""
    retry_after = ratelimit.hit(key, limit)
    if retry_after is not None:
        raise ChatError("rate_limited", detail, retry_after_s=retry_after)
