"""The chat's rate-limit checks, shared by the sockets and the HTTP API.

``check_rate`` counts in Redis, shared by every process. ``check_socket_rate`` counts in this
process's memory: the per-message limits of sockets, checked on every frame of the hot path,
where a round trip per message would cost more than the message itself (reflib.ratelimit)."""

from __future__ import annotations

from chat.errors import ChatError
from reflib import ratelimit


def check_rate(*, key: str, limit: tuple[int, int], detail: str) -> None:
    """Count one more action of ``key``; ``rate_limited`` (with the wait) over ``limit``."""
    retry_after = ratelimit.hit(key, limit)
    if retry_after is not None:
        raise ChatError("rate_limited", detail, retry_after_s=retry_after)


def check_socket_rate(*, key: str, limit: tuple[int, int], detail: str) -> None:
    """As ``check_rate``, counted in this process (``reflib.ratelimit.local_windows``)."""
    retry_after = ratelimit.local_windows.hit(key, limit)
    if retry_after is not None:
        raise ChatError("rate_limited", detail, retry_after_s=retry_after)
