"""Fixed-window rate limits kept in Django's cache (Redis in production, shared by all
processes; local memory in embedded mode)."""

from __future__ import annotations

import time

from django.core.cache import cache


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
