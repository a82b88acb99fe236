"""Abuse limits shared by the apps (the chat's frames and sessions, the staff login).

Fixed-window rate limits and capped slots: in Redis when configured (shared by all processes,
one round trip per hit), otherwise in Django's local-memory cache (embedded mode)."""

from __future__ import annotations

import functools
import ipaddress
import logging
import threading
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


def address_key(ip: str | None) -> str:
    """The key of per-address limits: an IPv4 address, or the /64 an IPv6 address is in (one
    subscriber usually holds a whole /64, so single IPv6 addresses would be limitless)."""
    if not ip:
        return "unknown"
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


_local_slots: dict[str, dict[str, float]] = {}
_local_lock = threading.Lock()


def slot_take(key: str, member: str, *, limit: int, ttl_s: int) -> bool:
    """Take one of ``limit`` slots of ``key`` (open sockets of a token or an address) for
    ``member``; False when all are taken. A slot not refreshed (taken again) within ``ttl_s``
    is free again, so a process that died does not hold its sockets' slots for ever."""
    now = time.time()
    if settings.REDIS_URL:
        redis_key = cache.make_key(f"slots:{key}")
        client = _redis(settings.REDIS_URL)
        try:
            pipe = client.pipeline(transaction=True)
            pipe.zremrangebyscore(redis_key, "-inf", now - ttl_s)
            pipe.zscore(redis_key, member)
            pipe.zcard(redis_key)
            _removed, held, taken = pipe.execute()
            if held is None and int(taken) >= limit:
                return False
            pipe = client.pipeline(transaction=True)
            pipe.zadd(redis_key, {member: now})
            pipe.expire(redis_key, ttl_s + 1)
            pipe.execute()
        except redis.RedisError as error:
            # As for rate limits: an outage lets the socket through rather than stop the chat.
            log.warning("socket cap %s not counted: Redis unreachable (%s)", key, error)
        return True
    with _local_lock:
        slots = _local_slots.setdefault(key, {})
        for stale in [m for m, seen in slots.items() if seen < now - ttl_s]:
            del slots[stale]
        if member not in slots and len(slots) >= limit:
            return False
        slots[member] = now
        return True


def slots_refresh(slots: list[tuple[str, str]], *, ttl_s: int) -> None:
    """Keep the slots (key, member) of sockets that are still open from expiring: one round
    trip for all the sockets of a process."""
    if not slots:
        return
    now = time.time()
    if settings.REDIS_URL:
        pipe = _redis(settings.REDIS_URL).pipeline(transaction=False)
        for key, member in slots:
            redis_key = cache.make_key(f"slots:{key}")
            pipe.zadd(redis_key, {member: now})
            pipe.expire(redis_key, ttl_s + 1)
        try:
            pipe.execute()
        except redis.RedisError as error:
            log.warning("socket caps not refreshed: Redis unreachable (%s)", error)
        return
    with _local_lock:
        for key, member in slots:
            held = _local_slots.get(key)
            if held is not None and member in held:
                held[member] = now


def slot_release(key: str, member: str) -> None:
    if settings.REDIS_URL:
        try:
            _redis(settings.REDIS_URL).zrem(cache.make_key(f"slots:{key}"), member)
        except redis.RedisError as error:  # the slot expires by itself (slot_take's ttl)
            log.warning("socket cap %s not released: Redis unreachable (%s)", key, error)
        return
    with _local_lock:
        _local_slots.get(key, {}).pop(member, None)


class LocalWindows:
    """Fixed-window counters in this process's memory: for the chat's per-message limits, which
    a socket checks on every frame and which must not cost a round trip. They hold per process:
    a client whose sockets reach several processes gets each process's allowance (the socket
    caps, which are shared in Redis, bound how many)."""

    PRUNE_EVERY = 10_000

    def __init__(self) -> None:
        # key -> (end of its current window, hits in it)
        self.counts: dict[str, tuple[int, int]] = {}
        self.hits = 0

    def hit(self, key: str, limit: tuple[int, int]) -> int | None:
        """Count one hit on ``key``; return seconds to wait when over ``limit`` (count, seconds)."""
        count, period = limit
        now = int(time.time())
        ends = (now // period + 1) * period
        seen_ends, seen = self.counts.get(key, (ends, 0))
        seen = seen + 1 if seen_ends == ends else 1
        self.counts[key] = (ends, seen)
        self.hits += 1
        if self.hits % self.PRUNE_EVERY == 0:
            for stale in [name for name, (end, _) in self.counts.items() if end <= now]:
                del self.counts[stale]
        if seen > count:
            return max(1, ends - now)
        return None


local_windows = LocalWindows()
