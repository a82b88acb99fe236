"""Fixed-window rate limits kept in Django's cache (Redis in production, shared by all
processes; local memory in embedded mode)."""

from __future__ import annotations

import ipaddress
import time

from django.core.cache import cache
from django.http import HttpRequest


def hit(key: str, limit: tuple[int, int]) -> int | None:
    """Count one hit on ``key``; return seconds to wait when over ``limit`` (count, seconds)."""
    count, period = limit
    window = int(time.time()) // period
    cache_key = f"rl:{key}:{window}"
    cache.add(cache_key, 0, timeout=period + 1)
    try:
        hits = cache.incr(cache_key)
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=period + 1)
        hits = 1
    if hits > count:
        return max(1, (window + 1) * period - int(time.time()))
    return None


def client_ip(request: HttpRequest) -> str | None:
    """The address a request came from, the key of per-IP limits and blocks.

    This is ``REMOTE_ADDR`` only: reflib trusts no forwarding header itself. Behind a proxy,
    run daphne with ``--proxy-headers``, which sets the client address from the proxy's
    ``X-Forwarded-For`` (the proxy must overwrite that header, not append to a client's).
    """
    value = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None
