"""Fixed-window rate limits: in Redis when configured (shared by all processes, one round trip
per hit), otherwise in Django's local-memory cache (embedded mode)."""

from __future__ import annotations

import functools
import ipaddress
import logging
import time

import redis
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

log = logging.getLogger(__name__)


@functools.cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def hit(key: str, limit: tuple[int, int]) -> int | None:
    """Count one hit on ``key``; return seconds to wait when over ``limit`` (count, seconds)."""
    count, period = limit
    window = int(time.time()) // period
    cache_key = f"rl:{key}:{window}"
    if settings.REDIS_URL:
        redis_key = cache.make_key(cache_key)  # the cache's prefix keeps deployments apart
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        pipe.set(redis_key, 0, ex=period + 1, nx=True)
        pipe.incr(redis_key)
        try:
            hits = int(pipe.execute()[1])
        except redis.RedisError as error:
            # A Redis outage must not stop the chat (chat/outages.py): let this hit through.
            log.warning("rate limit %s not counted: Redis unreachable (%s)", key, error)
            return None
    else:
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
