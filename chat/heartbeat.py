"""One heartbeat per event loop for all of its chat sockets.

Every ``HEARTBEAT_S`` each open socket must (1) say it is alive — a patron's ``patron_seen_at``,
a librarian's presence — (2) keep its socket-cap slots from expiring, and (3) compare its
cursors with the database, to replay what a lost last notification left behind. Done per
socket, 2,000 idle sockets cost 100 thread hops, 200 queries and 100 Redis round trips a
second. Done here, for all of a process's sockets at once, a beat is one thread hop (three
queries) and one Redis pipeline, whatever the number of sockets; each socket then gets the
newest ``seq`` of what it follows in its own inbox, in turn with its other messages, if it
is behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from chat import backpressure, outages, socket_actions
from chat.loops import PerLoop
from reflib import ratelimit

log = logging.getLogger(__name__)

HEARTBEAT_S = 20.0
CATCH_UP_GRACE_S = 1.0


class Beating(Protocol):
    """An open socket, as the heartbeat needs it (chat.consumers.ChatConsumer)."""

    def pulse_share(self) -> tuple[int | None, int | None, list[int], list[tuple[str, str]]]:
        """(patron's conversation id, librarian's user id, followed conversation ids,
        held socket slots as (key, member))."""

    def behind(self, newest: dict[int, int]) -> bool:
        """Whether the database holds events of a followed conversation not yet delivered."""

    def ring(self, notice: dict[str, Any]) -> None: ...

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None: ...


class Heartbeat:
    """The sockets of one event loop and the task that beats for them while there are any."""

    def __init__(self) -> None:
        self.sockets: set[Beating] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: Beating) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run(), name="reflib-heartbeat")
        backpressure.here().watch(while_=lambda: bool(self.sockets))

    def discard(self, socket: Beating) -> None:
        self.sockets.discard(socket)

    async def _run(self) -> None:
        while self.sockets:
            await asyncio.sleep(HEARTBEAT_S)
            try:
                await self.beat()
            except outages.DATABASE_ERRORS as error:
                outages.database_failed(error, "beating the heart")
                for socket in list(self.sockets):
                    with contextlib.suppress(Exception):
                        await socket.close(code=outages.CLOSE_TRY_AGAIN)
            except Exception:  # a failed beat must not stop the next one
                log.exception("heartbeat failed")

    async def beat(self) -> None:
        sockets = list(self.sockets)
        conversation_ids: list[int] = []
        user_ids: set[int] = set()
        followed: set[int] = set()
        slots: list[tuple[str, str]] = []
        for socket in sockets:
            conversation_id, user_id, followed_ids, held = socket.pulse_share()
            if conversation_id is not None:
                conversation_ids.append(conversation_id)
            if user_id is not None:
                user_ids.add(user_id)
            followed.update(followed_ids)
            slots.extend(held)
        newest = await database_sync_to_async(socket_actions.sockets_alive)(
            conversation_ids=conversation_ids,
            user_ids=sorted(user_ids),
            followed_ids=sorted(followed),
        )
        await sync_to_async(ratelimit.slots_refresh, thread_sensitive=False)(
            slots, ttl_s=SLOT_TTL_S
        )
        # Events committed just before the read are still on their way to the sockets: compared
        # at once, every busy conversation would look behind and replay from the database, all
        # sockets together. A moment later only a lost notice leaves a socket behind.
        await asyncio.sleep(CATCH_UP_GRACE_S)
        notice = {"type": "chat.pulse", "newest": newest}
        for socket in sockets:
            if socket.behind(newest):
                socket.ring(notice)


# A socket's slot (of its token's, of its address's) lives this long without a heartbeat.
SLOT_TTL_S = int(3 * HEARTBEAT_S)

_hearts = PerLoop(Heartbeat)


def heart() -> Heartbeat:
    """The heartbeat of the running event loop."""
    return _hearts.get()
