"""The time daphne read each WebSocket frame, so that back-pressure sees how long it waited.

daphne reads every frame of a socket as soon as it arrives and puts it in that socket's input
queue, which the socket's consumer empties one frame at a time. When a process is handed more
than it can do, the frames wait there: not in its event loop, which stays responsive, and not
for a database connection. ``chat.backpressure`` can only refuse a backlog it can see, so
reflib's daphne protocol stamps each received frame with the monotonic time it was read
(``ARRIVED``), and the consumer reports the wait when it takes the frame.

daphne offers no hook for it: ``install()`` makes its WebSocket factory build this subclass,
whose ``onMessage`` is daphne's own with the stamp added (reflib.asgi installs it). Under
another ASGI server frames carry no stamp, and back-pressure watches the event loop and the
pool only.
"""

from __future__ import annotations

import time
from typing import Any

from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol

ARRIVED = "reflib.arrived"


def waited(message: dict[str, Any]) -> float | None:
    """Seconds since daphne read this ``websocket.receive`` message (None: not stamped)."""
    arrived = message.get(ARRIVED)
    return None if arrived is None else time.monotonic() - arrived


class StampedWebSocketProtocol(WebSocketProtocol):
    """daphne's WebSocket protocol, stamping each frame it reads with ``ARRIVED``."""

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.muted:
            return
        self.last_ping = time.time()
        message: dict[str, Any] = {"type": "websocket.receive", ARRIVED: time.monotonic()}
        if isBinary:
            message["bytes"] = payload
        else:
            message["text"] = payload.decode("utf8")
        self.application_queue.put_nowait(message)


def install() -> None:
    """Make daphne's WebSocket factory build the stamping protocol for every new socket."""
    WebSocketFactory.protocol = StampedWebSocketProtocol
