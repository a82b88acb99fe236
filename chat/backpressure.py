"""Back-pressure: a process that falls behind refuses new chat messages instead of queueing them.

A daphne process handed more messages than it can store and deliver does not refuse them by
itself: they wait, each longer than the last, for as long as the overload lasts. They wait in
one of three places, so the process watches all three:

- its sockets' **input queues**: daphne reads every frame at once and queues it for the socket's
  consumer, which takes one at a time; each frame carries the time it was read
  (``chat.arrivals``), and the consumer reports how long it waited;
- its **event loop**: ten times a second it reads how late a short sleep wakes up (the lag);
- its **database connections**: the fast path reports how long each message waited for one of
  the pool's connections (``chat.services.fast_path``).

A wait beyond ``REFLIB_OVERLOAD_LAG_MS`` in any of them makes the process refuse new messages
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

from chat.loops import PerLoop

log = logging.getLogger(__name__)

# The lag is read every LAG_TICK_S; a wait over the limit refuses messages for SHED_S.
LAG_TICK_S = 0.1
SHED_S = 0.25


class Pressure:
    """One event loop's state: whether it refuses messages, and until when."""

    def __init__(self) -> None:
        self.refusing_until = 0.0
        self.behind = False
        self.refused = 0
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

    def overloaded(self) -> bool:
        """Whether a new message must be refused busy (counted as one refusal if so)."""
        if time.monotonic() >= self.refusing_until:
            return False
        self.refused += 1
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
            if self.behind and time.monotonic() >= self.refusing_until:
                log.warning("caught up; %d messages were refused busy", self.refused)
                self.behind = False
                self.refused = 0


_pressures = PerLoop(Pressure)


def here() -> Pressure:
    """The state of the running event loop."""
    return _pressures.get()
