"""The doorbell: how a conversation's events and live frames reach the sockets that follow it.

The database is the mailbox: every stored event is there, in ``seq`` order, and a socket replays
from it whenever it finds a gap (chat.consumers). The doorbell only says "conversation C has
something new" and, to save the socket a read, carries the frame itself.

Each daphne process keeps, per event loop, a ``Station``: the sockets that follow each
conversation, and one Redis pub/sub subscription shared by all of them. Ringing is one
``PUBLISH``; the stations of every process hear it once and hand the notice to their own
followers, in memory. A conversation's traffic so costs one Redis command and one message per
process, whatever the number of sockets, instead of a ``group_send`` to each socket's channel.

Without Redis (the embedded demo, the fast tests) the stations of this process are rung
directly. Pub/sub is at-most-once; what it drops is repaired by replay: a later notice shows a
gap, the process-wide heartbeat compares every cursor with the database, and after a Redis
outage every follower is asked to catch up as soon as the subscription is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import weakref
from collections import defaultdict
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis
from django.conf import settings
from django.db import transaction

from chat import frames
from chat.outages import LAYER_ERRORS, RETRY_FIRST_S, RETRY_MAX_S

log = logging.getLogger(__name__)

# The topic of queue positions: a notice lists a queue's waiting conversations in order, and
# each station turns it into one ``queue`` frame for each of its followers of those.
POSITIONS = "*positions"
# How long a socket's first follow waits for its process's subscription to be confirmed; after
# that (Redis down) it goes on from the database and the recovery replays for it.
SUBSCRIBE_WAIT_S = 2.0


class Follower(Protocol):
    """A socket, as the doorbell needs it (chat.consumers.ChatConsumer)."""

    def ring(self, notice: dict[str, Any]) -> None:
        """Take a notice; called on the socket's own event loop, must not block."""

    def offer_position(self, frame: frames.QueuePosition) -> None:
        """A waiting patron's place and wait after a queue change; only a change is sent."""


def _config() -> tuple[str | None, str]:
    """The Redis address of the channel layer (None: in memory) and its key prefix."""
    layer: dict[str, Any] = settings.CHANNEL_LAYERS["default"]
    if layer["BACKEND"] == "channels.layers.InMemoryChannelLayer":
        return None, "reflib"
    config = layer.get("CONFIG", {})
    host = config["hosts"][0]
    address = host["address"] if isinstance(host, dict) else host
    return str(address), str(config.get("prefix", "asgi"))


def _channel(prefix: str) -> str:
    return f"{prefix}:doorbell"


def _encode(topic: str, notice: dict[str, Any]) -> bytes:
    return json.dumps({"t": topic, "n": notice}, separators=(",", ":")).encode()


class Station:
    """The followers of one event loop, and its subscription."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # Held weakly: a socket whose consumer died without its disconnect does not stay.
        self.followers: defaultdict[str, weakref.WeakSet[Any]] = defaultdict(weakref.WeakSet)
        self.address, self.prefix = _config()
        self.subscribed = asyncio.Event()
        self.listener: asyncio.Task[None] | None = None
        self.publisher: aioredis.Redis | None = None

    # --- following ---------------------------------------------------------------------------

    async def follow(self, topic: str, follower: Follower) -> None:
        """From now on ``follower`` hears ``topic``; returns once that is so (or Redis is down)."""
        self.followers[topic].add(follower)
        if self.address is None:
            return
        if self.listener is None:
            self.listener = self.loop.create_task(self._listen(), name="reflib-doorbell")
        if not self.subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.subscribed.wait(), SUBSCRIBE_WAIT_S)

    def unfollow(self, topic: str, follower: Follower) -> None:
        followers = self.followers.get(topic)
        if followers is not None:
            followers.discard(follower)
            if not followers:
                del self.followers[topic]

    def deliver(self, topic: str, notice: dict[str, Any]) -> None:
        if topic == POSITIONS:
            self._deliver_positions(notice["waiting"])
            return
        for follower in list(self.followers.get(topic, ())):
            follower.ring(notice)

    def _deliver_positions(self, waiting: list[tuple[str, int | None]]) -> None:
        for position, (public_id, estimated_wait_s) in enumerate(waiting, start=1):
            followers = self.followers.get(public_id)
            if not followers:
                continue
            frame = frames.queue_position(position=position, estimated_wait_s=estimated_wait_s)
            for follower in list(followers):
                follower.offer_position(frame)

    # --- Redis --------------------------------------------------------------------------------

    async def publish(self, payload: bytes) -> None:
        assert self.address is not None
        if self.publisher is None:
            self.publisher = aioredis.Redis.from_url(
                self.address, socket_timeout=5, socket_connect_timeout=5
            )
        await self.publisher.publish(_channel(self.prefix), payload)

    async def _listen(self) -> None:
        assert self.address is not None
        delay = RETRY_FIRST_S
        failed = False
        while True:
            client = aioredis.Redis.from_url(self.address, socket_connect_timeout=5)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(_channel(self.prefix))
                    async for message in pubsub.listen():
                        if message["type"] == "subscribe":
                            self.subscribed.set()
                            delay = RETRY_FIRST_S
                            if failed:
                                failed = False
                                self._recovered()
                        elif message["type"] == "message":
                            self._hand_out(message["data"])
            except LAYER_ERRORS as error:
                self.subscribed.clear()
                if not failed:
                    log.warning(
                        "doorbell unreachable (%s: %s); sockets serve from the database",
                        type(error).__name__,
                        error,
                    )
                failed = True
            finally:
                with contextlib.suppress(*LAYER_ERRORS):
                    await client.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)

    def _hand_out(self, payload: bytes) -> None:
        # One bad notice (another version's, a socket's failure) must not stop the listener.
        try:
            decoded = json.loads(payload)
            self.deliver(decoded["t"], decoded["n"])
        except Exception:
            log.exception("doorbell notice not handed out")

    def _recovered(self) -> None:
        """What was rung while the subscription was down is lost: every follower catches up."""
        followers = {follower for group in self.followers.values() for follower in group}
        log.warning("doorbell answers again; %d sockets catch up", len(followers))
        for follower in followers:
            follower.ring({"type": "chat.resume"})

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.listener
        if self.publisher is not None:
            await self.publisher.aclose()


_stations: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Station] = (
    weakref.WeakKeyDictionary()
)


def station() -> Station:
    """The station of the running event loop."""
    loop = asyncio.get_running_loop()
    found = _stations.get(loop)
    if found is None:
        found = _stations[loop] = Station(loop)
    return found


async def close() -> None:
    """Close the running event loop's station (tests do, before their event loop ends)."""
    found = _stations.pop(asyncio.get_running_loop(), None)
    if found is not None:
        await found.close()


@functools.cache
def _sync_client(address: str) -> redis.Redis:
    return redis.Redis.from_url(address, socket_timeout=5, socket_connect_timeout=5)


async def ring(topic: str, notice: dict[str, Any]) -> None:
    """Ring ``topic`` from async code (a consumer), once what it announces is committed."""
    here = station()
    if here.address is None:
        _ring_local(topic, notice)
        return
    try:
        await here.publish(_encode(topic, notice))
    except LAYER_ERRORS as error:
        log.warning("doorbell unreachable; notice for %s dropped (%s)", topic, error)


def ring_sync(topic: str, notice: dict[str, Any]) -> None:
    """Ring ``topic`` from synchronous code (a service in any thread or process)."""
    address, prefix = _config()
    if address is None:
        _ring_local(topic, notice)
        return
    try:
        _sync_client(address).publish(_channel(prefix), _encode(topic, notice))
    except LAYER_ERRORS as error:
        log.warning("doorbell unreachable; notice for %s dropped (%s)", topic, error)


def ring_on_commit(topic: str, notice: dict[str, Any]) -> None:
    """Ring ``topic`` after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: ring_sync(topic, notice))


def _ring_local(topic: str, notice: dict[str, Any]) -> None:
    for loop, found in list(_stations.items()):
        if loop.is_closed():
            continue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            found.deliver(topic, notice)
        else:
            loop.call_soon_threadsafe(found.deliver, topic, notice)
