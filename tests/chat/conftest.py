"""Shared pieces of the chat engine's tests: conversations, sockets and a private channel layer.

Nothing here is autouse: a module asks for what it needs (``pytestmark`` or arguments), so the
HTTP API's tests in this folder are not affected.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.db import connections
from django.test import Client
from pytest_django import Settings
from redis.asyncio import Redis

from chat import doorbell, services
from chat.models import Conversation, PresenceState
from chat.services import fast_path
from reflib.asgi import application
from reflib.models import Queue

Frame = dict[str, Any]

DEMO_ORIGIN = "https://www.demo-library.org"
OTHER_ORIGIN = "https://other-library.example"
OWN_ORIGIN = "http://testserver"
PATRON_IP = "203.0.113.7"
# Generous: the Redis channel layer and the thread pool add latency under a loaded machine.
RECEIVE_TIMEOUT_S = 3.0
QUIET_S = 0.2
# See Socket.disconnect.
DISCONNECT_S = 1.5


# --- conversations ----------


@dataclass(frozen=True)
class Started:
    """A conversation a patron opened, with the secret only the patron knows."""

    pk: int
    public_id: str
    token: str


def start(queue: Queue, question: str = "Do you have The Hobbit?", **fields: Any) -> Started:
    fields.setdefault("name", "Pat Patron")
    fields.setdefault("email", "pat@example.org")
    fields.setdefault("ip", PATRON_IP)
    started = services.conversation_start(queue=queue, question=question, **fields)
    return Started(started.conversation.pk, started.conversation.public_id, started.token)


def start_accepted(queue: Queue, librarian: User, question: str = "Do you have Dune?") -> Started:
    started = start(queue, question)
    services.conversation_accept(conversation_id=started.pk, user=librarian)
    return started


def go_available(user: User) -> None:
    services.presence_set(user=user, state=PresenceState.AVAILABLE)


def fresh(started: Started) -> Conversation:
    return Conversation.objects.get(pk=started.pk)


def session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


# --- sockets ----------


@dataclass
class Socket:
    """A WebSocket client with the receive helpers these tests need."""

    communicator: WebsocketCommunicator
    disconnected: bool = False

    async def send(self, frame: Frame) -> None:
        await self.communicator.send_json_to(frame)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def send_bytes(self, data: bytes) -> None:
        await self.communicator.send_to(bytes_data=data)

    async def recv(self) -> Frame:
        frame = await self.communicator.receive_json_from(timeout=RECEIVE_TIMEOUT_S)
        assert isinstance(frame, dict)
        return frame

    async def recv_until(self, kind: str, **fields: Any) -> Frame:
        """The next frame of type ``kind`` with these field values; frames before it are dropped."""
        skipped: list[Frame] = []
        while True:
            try:
                frame = await self.recv()
            except TimeoutError:
                raise AssertionError(
                    f"no {kind} frame with {fields}; received before the timeout: {skipped}"
                ) from None
            if frame.get("type") == kind and all(frame.get(k) == v for k, v in fields.items()):
                return frame
            skipped.append(frame)

    async def drain(self, quiet: float = QUIET_S) -> list[Frame]:
        """Every frame that arrives until the socket has been quiet for ``quiet`` seconds."""
        frames: list[Frame] = []
        while not await self.communicator.receive_nothing(timeout=quiet):
            frames.append(await self.recv())
        return frames

    async def nothing(self, quiet: float = QUIET_S) -> bool:
        """True when nothing arrives for ``quiet`` seconds."""
        return bool(await self.communicator.receive_nothing(timeout=quiet))

    async def close_code(self) -> int:
        """The code the server closed this socket with (fails on any other output)."""
        message = await self.communicator.receive_output(timeout=RECEIVE_TIMEOUT_S)
        assert message["type"] == "websocket.close", message
        return int(message.get("code", 1000))

    async def disconnect(self) -> None:
        """Close from the client side and let the consumer clean up.

        With the Redis channel layer, a consumer sometimes stays in channels_redis' receive
        after its own clean-up, until it is cancelled again (the first cancellation gets lost
        between channels_redis and redis-py); this cancels it every ``DISCONNECT_S``.
        The consumer's ``disconnect()`` has run by then: the group check still applies.
        """
        if self.disconnected:
            return
        self.disconnected = True
        communicator = self.communicator
        if communicator.future.cancelled():
            # The consumer already stopped (its task was cancelled): sending it a disconnect
            # would raise CancelledError, a BaseException that cuts every later teardown short
            # (settings, database flush) and fails the rest of the run.
            return
        await communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        # communicator.disconnect() cancels once and then waits without a limit: a second lost
        # cancellation would hang the test. Cancel again until the consumer has stopped.
        for _attempt in range(20):
            done, _pending = await asyncio.wait([communicator.future], timeout=DISCONNECT_S)
            if done:
                break
            communicator.future.cancel()
        else:
            raise AssertionError("the consumer did not stop after 20 cancellations")
        if not communicator.future.cancelled():
            communicator.future.result()  # re-raise a consumer crash


def stored_events(frames: list[Frame]) -> list[Frame]:
    return [frame for frame in frames if "seq" in frame and frame.get("type") != "ack"]


@dataclass
class Sockets:
    """Opens patron and desk sockets against the real ASGI application; closes them all."""

    opened: list[Socket] = field(default_factory=list)

    async def open(self, path: str, headers: list[tuple[bytes, bytes]]) -> Socket:
        socket = Socket(WebsocketCommunicator(application, path, headers=headers))
        self.opened.append(socket)
        connected, _subprotocol = await socket.communicator.connect(timeout=RECEIVE_TIMEOUT_S)
        assert connected
        return socket

    async def patron_socket(self, origin: str | None = DEMO_ORIGIN) -> Socket:
        headers = [(b"host", b"testserver")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        return await self.open("/ws/v1/patron/", headers)

    async def patron(
        self, started: Started, *, last_seq: int = 0, origin: str | None = DEMO_ORIGIN
    ) -> tuple[Socket, Frame]:
        """A patron socket that has said hello; returns it with the welcome frame."""
        socket = await self.patron_socket(origin)
        await socket.send({"type": "hello", "token": started.token, "last_seq": last_seq})
        welcome = await socket.recv()
        assert welcome["type"] == "welcome", welcome
        return socket, welcome

    async def desk_socket(self, user: User | None, *, origin: str | None = OWN_ORIGIN) -> Socket:
        headers = [(b"host", b"testserver")]
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if user is not None:
            cookie = await database_sync_to_async(session_cookie)(user)
            headers.append((b"cookie", f"sessionid={cookie}".encode()))
        return await self.open("/ws/v1/desk/", headers)

    async def desk(self, user: User) -> tuple[Socket, Frame]:
        """A librarian's desk socket; returns it with the welcome frame."""
        socket = await self.desk_socket(user)
        welcome = await socket.recv()
        assert welcome["type"] == "welcome", welcome
        return socket, welcome

    async def close_all(self) -> None:
        """Disconnect every socket, then re-raise the first consumer crash, if any."""
        errors: list[BaseException] = []
        for socket in self.opened:
            try:
                await socket.disconnect()
            except Exception as error:  # a crashed consumer re-raises here
                errors.append(error)
        if errors:
            raise errors[0]


async def group_memberships() -> int:
    """How many (group, channel) memberships the current channel layer holds."""
    layer = get_channel_layer()
    if isinstance(layer, InMemoryChannelLayer):
        return sum(len(members) for members in layer.groups.values())
    client = Redis.from_url(django_settings.REDIS_URL)
    try:
        # One KEYS, not a SCAN: a Redis shared with benchmarks may hold many keys.
        keys = await client.keys(f"{layer.prefix}:group:*")
        return sum([int(await client.zcard(key)) for key in keys])
    finally:
        await client.aclose()


@pytest.fixture
async def sockets(settings: Settings, transactional_db: None) -> AsyncIterator[Sockets]:
    """Sockets on a channel layer of this test's own, checked afterwards for group clean-up
    and for followers left in the process's doorbell.

    With Redis the layer gets a unique prefix, so that other test runs or servers on the same
    Redis can neither see nor disturb this test's groups.
    """
    layers = json.loads(json.dumps(settings.CHANNEL_LAYERS))
    if "prefix" in layers["default"].get("CONFIG", {}):
        layers["default"]["CONFIG"]["prefix"] = f"reflib-test-{uuid.uuid4().hex}"
    settings.CHANNEL_LAYERS = layers  # a fresh layer object for this test's event loop
    layer = get_channel_layer()
    if hasattr(layer, "brpop_timeout"):
        # A consumer's exit waits for its pending blocking pop on Redis to return (5 s by
        # default); a short poll keeps each socket's disconnect fast. Delivery is unchanged.
        layer.brpop_timeout = 0.2
    opened = Sockets()
    try:
        yield opened
    finally:
        try:
            await opened.close_all()
            left_in_groups = await group_memberships()
            left_following = sorted(
                topic for topic, followers in doorbell.station().followers.items() if followers
            )
        finally:
            await fast_path.close()
            await doorbell.close()
            # The consumers' thread keeps its database connection open (CONN_MAX_AGE): close
            # it, or the test database cannot be dropped at the end of the run.
            await database_sync_to_async(connections.close_all)()
            if not isinstance(layer, InMemoryChannelLayer):
                await layer.flush()
    assert left_in_groups == 0, "a disconnected socket stayed in a group"
    assert left_following == [], "a disconnected socket still follows a conversation"
