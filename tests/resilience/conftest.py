"""Fixtures of the fault-injection suite: a Redis of the test's own that this process and the
daphne processes it starts both use."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest
from pytest_django import Settings

from tests.resilience.faults import OwnRedis, own_redis


@pytest.fixture
def redis_server(settings: Settings) -> Iterator[OwnRedis]:
    """A fresh ``redis-server`` for this test; settings point the channel layer, the cache and
    the servers started afterwards (tests.live.DaphneCluster reads REDIS_URL) at it."""
    with own_redis() as redis:
        settings.REDIS_URL = redis.url
        layers = copy.deepcopy(settings.CHANNEL_LAYERS)
        layers["default"]["CONFIG"]["hosts"][0]["address"] = redis.url
        settings.CHANNEL_LAYERS = layers
        caches = copy.deepcopy(settings.CACHES)
        caches["default"]["LOCATION"] = redis.url
        settings.CACHES = caches
        yield redis
