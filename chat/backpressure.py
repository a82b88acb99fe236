"""Back-pressure: a process that falls behind refuses new chat messages instead of queueing them.

A daphne process handed more messages than it can store and deliver does not refuse them by
itself: they wait, each longer than the last, for as long as the overload lasts. They wait in
three places, so the process watches all three:

- its **event loop**: ten times a second it reads how late a short sleep wakes up (the lag);
- its **database connections**: the fast path reports how long each message waited for one of
  the pool's connections (``chat.services.fast_path``);
- each **socket's own queue**: daphne queues a socket's frames for its consumer, which takes
  them one at a time; a message with more than ``SOCKET_BACKLOG`` frames of its socket waiting
  behind it is refused, so that the queue drains (the others' messages are not).

A wait beyond ``REFLIB_OVERLOAD_LAG_MS`` in the first two makes the process refuse new messages
for the next ``SHED_S``. A refusal is ``rate_limited`` with ``retry_after_s: 1``
(``chat.errors.ServerBusy``), before any database work: it costs a small part of what storing
and delivering costs, so the backlog drains, and the senders (the widget, the desk) wait and
send again instead of the process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from django.conf import settings

log = logging.getLogger(__name__)

# The lag is read every LAG_TICK_S; a wait over the limit refuses messages for SHED_S.
LAG_TICK_S = 0.1
SHED_S = 0.25
# Frames of one socket that may wait behind the message it handles.
SOCKET_BACKLOG = 4


class Pressure:
    """One event loop's state: whether it refuses messages, and until when."""

    def __init__(self) -> None:
        self.refusing_until = 0.0
        self.behind = False
        self.refused = 0
        self.last_refusal = 0.0
        self.gauge: asyncio.Task[None] | None = None

    def waited(self, seconds: float, what: str) -> None:
        """A message (or the loop itself) waited ``seconds`` for ``what``."""
        limit_ms = settings.REFLIB_OVERLOAD_LAG_MS
        if seconds * 1000 <= limit_ms:
            return
        if not self.behind:
            self.behind = True
            log.warning(
                "%s %.0f ms behind (limit %d ms): new messages are refused busy",
                what,
                seconds * 1000,
                limit_ms,
            )
        self.refusing_until = time.monotonic() + SHED_S

    def overloaded(self, *, socket_backlog: int) -> bool:
        """Whether a new message must be refused busy (counted as one refusal if so), given the
        frames of its socket waiting behind it."""
        now = time.monotonic()
        if socket_backlog > SOCKET_BACKLOG:
            if not self.behind:
                self.behind = True
                log.warning(
                    "a socket has %d frames waiting (limit %d): its messages are refused busy",
                    socket_backlog,
                    SOCKET_BACKLOG,
                )
        elif now >= self.refusing_until:
            return False
        self.refused += 1
        self.last_refusal = now
        return True

    def watch(self, *, while_: Callable[[], bool]) -> None:
        """Read the loop's lag for as long as ``while_()`` holds (the process has sockets)."""
        if self.gauge is None or self.gauge.done():
            loop = asyncio.get_running_loop()
            self.gauge = loop.create_task(self._gauge(while_), name="reflib-lag-gauge")

    async def _gauge(self, while_: Callable[[], bool]) -> None:
        while while_():
            due = time.monotonic() + LAG_TICK_S
            await asyncio.sleep(LAG_TICK_S)
            self.waited(time.monotonic() - due, "event loop")
            now = time.monotonic()
            if self.behind and now >= max(self.refusing_until, self.last_refusal + SHED_S):
                log.warning("caught up; %d messages were refused busy", self.refused)
                self.behind = False
                self.refused = 0


_pressures: dict[asyncio.AbstractEventLoop, Pressure] = {}


def here() -> Pressure:
    """The state of the running event loop."""
    loop = asyncio.get_running_loop()
    for stale in [other for other in _pressures if other.is_closed()]:
        del _pressures[stale]
    found = _pressures.get(loop)
    if found is None:
        found = _pressures[loop] = Pressure()
    return found
