"""Async WebSocket clients for the live tests: real sockets to real daphne processes.

``LiveSocket`` is one connection with bounded receive helpers. ``ResumingClient`` is what a
well-made widget or desk does across failures (PROTOCOL.md): it reconnects with backoff — to
another process when its own is down — resumes with the last ``seq`` it saw, resends every send
that has no ack yet under the same ``client_msg_id``, and records every stored event it receives
so that a test can prove nothing was lost, repeated or reordered.

Every wait here is bounded; nothing is left running: ``ResumingClient.stop`` cancels its task
and closes its socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

Frame = dict[str, Any]

DEMO_ORIGIN = "https://www.demo-library.org"
RECEIVE_TIMEOUT_S = 5.0
QUIET_S = 0.4
STORED_TYPES = frozenset({"message", "file", "status", "note", "checkin", "checkin_answer"})
# The server may close a socket for a reason that no retry can repair.
FATAL_CLOSE_CODES = frozenset({4400, 4401, 4403, 4429})


class Server(Protocol):
    """What a client needs to know of a daphne process (tests.live.DaphneProcess)."""

    @property
    def ws_url(self) -> str: ...

    @property
    def http_url(self) -> str: ...


def is_stored(frame: Frame) -> bool:
    """A stored event (it has a ``seq``); an ack has a ``seq`` too but is not an event."""
    return frame.get("type") in STORED_TYPES and "seq" in frame


class LiveSocket:
    """One WebSocket connection; keeps every frame it received, in order, in ``frames``."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.frames: list[Frame] = []

    @classmethod
    async def open(
        cls,
        url: str,
        *,
        origin: str | None = None,
        cookie: str | None = None,
        seconds: float = RECEIVE_TIMEOUT_S,
    ) -> LiveSocket:
        headers: dict[str, str] = {}
        if origin is not None:
            headers["Origin"] = origin
        if cookie is not None:
            headers["Cookie"] = cookie
        connection = await connect(
            url,
            additional_headers=headers,
            open_timeout=seconds,
            close_timeout=2,
            ping_interval=None,
        )
        return cls(connection)

    async def send(self, frame: Frame) -> None:
        await self.connection.send(json.dumps(frame))

    async def recv(self, seconds: float = RECEIVE_TIMEOUT_S) -> Frame:
        text = await asyncio.wait_for(self.connection.recv(), seconds)
        frame = json.loads(text)
        assert isinstance(frame, dict), frame
        self.frames.append(frame)
        return frame

    async def recv_until(
        self, kind: str | tuple[str, ...], *, seconds: float = RECEIVE_TIMEOUT_S, **fields: Any
    ) -> Frame:
        """The next frame of type ``kind`` (or one of several) with these field values; earlier
        frames stay in ``frames``. Fails after ``seconds`` in all."""
        kinds = (kind,) if isinstance(kind, str) else kind
        start = len(self.frames)

        async def wait() -> Frame:
            while True:
                frame = await self.recv(seconds)
                if frame.get("type") in kinds and all(frame.get(k) == v for k, v in fields.items()):
                    return frame

        try:
            return await asyncio.wait_for(wait(), seconds)
        except TimeoutError:
            raise AssertionError(
                f"no {kind} frame with {fields} within {seconds} s; "
                f"received meanwhile: {self.frames[start:]}"
            ) from None

    async def drain(self, quiet: float = QUIET_S, limit: float = RECEIVE_TIMEOUT_S) -> list[Frame]:
        """Every frame that arrives until the socket is quiet for ``quiet`` seconds."""
        frames: list[Frame] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while loop.time() < deadline:
            try:
                frames.append(await self.recv(quiet))
            except TimeoutError:
                break
        return frames

    def stored(self) -> list[Frame]:
        return [frame for frame in self.frames if is_stored(frame)]

    async def close_code(self, seconds: float = RECEIVE_TIMEOUT_S) -> int:
        """The code the server closes this socket with; fails on a frame or on a timeout."""
        try:
            frame = await self.recv(seconds)
        except ConnectionClosed as closed:
            close = closed.rcvd
        else:
            raise AssertionError(f"expected a close, received {frame}")
        assert close is not None, "closed without a close frame"
        return close.code

    async def close(self) -> None:
        await self.connection.close()

    def abort(self) -> None:
        """Drop the TCP connection without a close handshake, as a lost network does."""
        self.connection.transport.abort()


async def open_patron(
    server: Server, token: str, *, last_seq: int = 0, origin: str = DEMO_ORIGIN
) -> tuple[LiveSocket, Frame]:
    """A patron socket that has said hello; returns it with the welcome frame."""
    socket = await LiveSocket.open(f"{server.ws_url}/ws/v1/patron/", origin=origin)
    try:
        await socket.send({"type": "hello", "token": token, "last_seq": last_seq})
        welcome = await socket.recv()
        assert welcome["type"] == "welcome", welcome
    except BaseException:
        await socket.close()
        raise
    return socket, welcome


async def open_desk(server: Server, session_id: str) -> tuple[LiveSocket, Frame]:
    """A librarian's desk socket (Django session, reflib's own origin) with its welcome."""
    socket = await LiveSocket.open(
        f"{server.ws_url}/ws/v1/desk/", origin=server.http_url, cookie=f"sessionid={session_id}"
    )
    try:
        welcome = await socket.recv()
        assert welcome["type"] == "welcome", welcome
    except BaseException:
        await socket.close()
        raise
    return socket, welcome


class FatalClose(Exception):
    """The server refused the client for good (bad token, origin, session)."""


@dataclass(repr=False)
class ResumingClient:
    """A patron or desk that survives drops, dead processes and a restarted Redis.

    ``servers`` is in order of preference: after a failure the client tries its first server,
    then the next, with jittered exponential backoff between rounds (so that a crowd dropped
    at once does not come back in lockstep).
    """

    role: Literal["patron", "desk"]
    servers: Sequence[Server]
    conversation: str
    credential: str  # the patron's token or the librarian's session id
    last_seq: int = 0
    events: dict[int, Frame] = field(default_factory=dict)
    duplicates: list[Frame] = field(default_factory=list)
    out_of_order: list[Frame] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    acks: dict[str, Frame] = field(default_factory=dict)
    ack_mismatches: list[tuple[Frame, Frame]] = field(default_factory=list)
    errors: list[Frame] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)
    connected_at: list[float] = field(default_factory=list)  # event-loop time of each
    failures: list[str] = field(default_factory=list)
    refused_statuses: list[int] = field(default_factory=list)  # HTTP answers to an upgrade
    history: list[str] = field(default_factory=list)  # when what happened, for a failure report
    socket: LiveSocket | None = None
    task: asyncio.Task[None] | None = None
    started_at: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    max_backoff_s: float = 0.5

    def start(self) -> None:
        self.started_at = asyncio.get_running_loop().time()
        self.task = asyncio.create_task(self._run(), name=f"{self.role}-client")

    def _note(self, what: str) -> None:
        elapsed = asyncio.get_running_loop().time() - self.started_at
        self.history.append(f"{elapsed:.2f} {what}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        if self.socket is not None:
            await self.socket.close()
            self.socket = None

    def check_alive(self) -> None:
        """Raise what killed the client's task, if something did."""
        if self.task is not None and self.task.done():
            self.task.result()

    # --- what a test does ---------------------------------------------------------------------

    async def send(self, client_msg_id: str, body: str) -> None:
        """Send now if connected; either way the message is resent until it is acked."""
        self.pending[client_msg_id] = body
        if self.socket is not None:
            # A send into a dying connection may hang or fail: the resend on reconnect covers it.
            with contextlib.suppress(ConnectionClosed, TimeoutError):
                await asyncio.wait_for(self.socket.send(self._send_frame(client_msg_id, body)), 2)

    def drop(self) -> None:
        """Lose the current connection abruptly; the client reconnects by itself."""
        if self.socket is not None:
            self.socket.abort()

    async def wait_for(self, condition: Callable[[], bool], seconds: float, what: str) -> None:
        """Wait until ``condition()`` holds, at most ``seconds``."""

        async def wait() -> None:
            while not condition():
                self.check_alive()
                self.changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.changed.wait(), 0.2)

        try:
            await asyncio.wait_for(wait(), seconds)
        except TimeoutError:
            raise AssertionError(f"{self.role}: {what} not within {seconds} s; {self}") from None

    def messages_from(self, sender: str) -> list[Frame]:
        return [
            frame
            for _seq, frame in sorted(self.events.items())
            if frame["type"] == "message" and frame["from"] == sender
        ]

    def __repr__(self) -> str:
        return (
            f"<{self.role} last_seq={self.last_seq} events={len(self.events)} "
            f"pending={list(self.pending)[:10]} duplicates={len(self.duplicates)} "
            f"out_of_order={len(self.out_of_order)} errors={self.errors[:3]} "
            f"connections={self.connections} history={self.history[-40:]}>"
        )

    # --- the connection loop ------------------------------------------------------------------

    def _send_frame(self, client_msg_id: str, body: str) -> Frame:
        frame: Frame = {"type": "send", "client_msg_id": client_msg_id, "body": body}
        if self.role == "desk":
            frame["conversation"] = self.conversation
        return frame

    async def _run(self) -> None:
        backoff = 0.05
        while True:
            for server in self.servers:
                try:
                    socket = await self._resume(server)
                except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError) as error:
                    self._closed(error)
                    continue
                backoff = 0.05
                self.connections.append(server.ws_url)
                self.connected_at.append(asyncio.get_running_loop().time())
                self._note(f"resumed on {server.ws_url} after {self.last_seq}")
                try:
                    await self._read(socket)
                except ConnectionClosed as error:
                    self._closed(error)
                finally:
                    self.socket = None
                    await socket.close()
                break
            await asyncio.sleep(random.uniform(backoff / 2, backoff))
            backoff = min(backoff * 2, self.max_backoff_s)

    def _closed(self, error: BaseException) -> None:
        self.failures.append(repr(error))
        self._note(repr(error))
        if isinstance(error, InvalidStatus):
            self.refused_statuses.append(error.response.status_code)
        close = error.rcvd if isinstance(error, ConnectionClosed) else None
        if close is not None and close.code in FATAL_CLOSE_CODES:
            raise FatalClose(f"{self.role} refused with {close.code}") from error

    async def _resume(self, server: Server) -> LiveSocket:
        if self.role == "patron":
            socket, _welcome = await open_patron(server, self.credential, last_seq=self.last_seq)
        else:
            socket, _welcome = await open_desk(server, self.credential)
            try:
                await socket.send(
                    {
                        "type": "subscribe",
                        "conversation": self.conversation,
                        "last_seq": self.last_seq,
                    }
                )
            except BaseException:
                await socket.close()
                raise
        self.socket = socket
        try:
            for client_msg_id, body in list(self.pending.items()):
                await socket.send(self._send_frame(client_msg_id, body))
        except BaseException:
            self.socket = None
            await socket.close()
            raise
        return socket

    async def _read(self, socket: LiveSocket) -> None:
        while True:
            text = await socket.connection.recv()
            frame = json.loads(text)
            self._receive(frame)
            self.changed.set()

    def _receive(self, frame: Frame) -> None:
        kind = frame.get("type")
        if is_stored(frame) and frame.get("conversation") == self.conversation:
            seq = frame["seq"]
            if seq in self.events:
                self.duplicates.append(frame)
            elif seq <= self.last_seq:
                self.out_of_order.append(frame)
            else:
                self.events[seq] = frame
                self.last_seq = seq
                self._note(f"seq {seq}")
        elif kind == "ack":
            client_msg_id = frame["client_msg_id"]
            first = self.acks.setdefault(client_msg_id, frame)
            if (first["seq"], first["id"]) != (frame["seq"], frame["id"]):
                self.ack_mismatches.append((first, frame))
            self.pending.pop(client_msg_id, None)
            self._note(f"ack {client_msg_id} {frame['seq']}")
        elif kind == "error":
            self.errors.append(frame)
