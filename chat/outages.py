"""What the chat's sockets do while the channel layer (Redis) or the database is unreachable.

The database is the mailbox, the channel layer only the doorbell (docs/architecture.md), so:

- **Channel layer down or paused**: sockets keep serving from the database. A handshake still
  gets its welcome and replay, a send is stored and acked; a notification that cannot be sent
  is dropped and replay repairs it. A group that cannot be joined is remembered; as soon as the
  layer answers again, every open socket of the process joins its groups again (a restarted
  Redis has forgotten them) and then replays what the database holds beyond its cursors.
- **Database down**: nothing can be stored or read, so the socket closes with 4503 (try again
  later); the client reconnects with backoff and resumes, resending what has no ack.

Either way the process logs one short warning per outage, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable
from typing import Any, Protocol

import psycopg
from django.db.utils import InterfaceError, OperationalError
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# The server cannot serve this socket for a moment (HTTP 503 in the 4xxx range the protocol's
# other codes use; daphne refuses RFC 6455's own 1013, Try Again Later).
CLOSE_TRY_AGAIN = 4503
LAYER_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)
# Django's errors, and psycopg's own from the async pool of chat.services.fast_path.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
)
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 2.0


class LayerClient(Protocol):
    """An open socket, as the recovery needs it (chat.consumers.ChatConsumer)."""

    async def rejoin(self) -> None: ...

    async def layer_recovered(self) -> None: ...


class LayerWatch:
    """One per process: notices that the channel layer failed and, once it answers again,
    has every open socket join its groups again and catch up from the database."""

    def __init__(self) -> None:
        self.sockets: weakref.WeakSet[Any] = weakref.WeakSet()
        self.recovery: asyncio.Task[None] | None = None

    def add(self, socket: LayerClient) -> None:
        self.sockets.add(socket)

    def discard(self, socket: LayerClient) -> None:
        self.sockets.discard(socket)

    def failed(self, error: BaseException, doing: str) -> None:
        if self.recovery is not None and not self.recovery.done():
            return
        log.warning(
            "channel layer unreachable while %s (%s: %s); sockets serve from the database",
            doing,
            type(error).__name__,
            error,
        )
        self.recovery = asyncio.create_task(self._recover(), name="reflib-layer-recovery")

    async def _recover(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
            sockets: list[LayerClient] = list(self.sockets)
            try:
                for socket in sockets:
                    await socket.rejoin()
            except LAYER_ERRORS:
                continue
            break
        log.warning("channel layer answers again; %d sockets joined their groups", len(sockets))
        for socket in sockets:
            # If the layer failed again already, the next recovery rejoins; heartbeats replay.
            with contextlib.suppress(*LAYER_ERRORS):
                await socket.layer_recovered()


layer_watch = LayerWatch()


async def tolerate_layer(step: Awaitable[None], doing: str) -> bool:
    """Run a channel-layer call; on a layer failure log it once and go on. True if it worked."""
    try:
        await step
    except LAYER_ERRORS as error:
        layer_watch.failed(error, doing)
        return False
    return True


def database_failed(error: BaseException, doing: str) -> None:
    log.warning(
        "database unreachable while %s (%s); closing the socket with %d",
        doing,
        str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__,
        CLOSE_TRY_AGAIN,
    )


class OutageGuard:
    """ASGI middleware around the WebSocket stack: a database failure before a consumer runs
    (the session lookup of a desk handshake) closes the socket with 4503, not a traceback."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        accepted = False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal accepted
            if message["type"] in ("websocket.accept", "websocket.close"):
                accepted = True
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except DATABASE_ERRORS as error:
            database_failed(error, "opening a socket")
            if not accepted:
                # Accept first, so that the client sees the close code, not a refused upgrade.
                await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN})
