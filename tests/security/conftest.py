"""Shared pieces of the security tests: a private cache namespace and media folder per test,
and sockets from a chosen client address."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import pytest
from channels.testing import WebsocketCommunicator
from pytest_django import Settings

from reflib.asgi import application
from tests.chat.conftest import (  # noqa: F401  (fixtures shared with the chat's tests)
    DEMO_ORIGIN,
    RECEIVE_TIMEOUT_S,
    Socket,
    Sockets,
    sockets,
)


@pytest.fixture(autouse=True)
def _private_limits(settings: Settings) -> None:
    # Rate-limit counters live in the cache: a fresh key namespace per test (clearing a shared
    # Redis would disturb other runs).
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "KEY_PREFIX": f"test-{uuid4().hex}"}
    }


@pytest.fixture(autouse=True)
def _media_root(settings: Settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


async def patron_socket_from(
    opened: Sockets, address: str, *, origin: str = DEMO_ORIGIN, expect_open: bool = True
) -> Socket:
    """A patron socket whose client address is ``address`` (the handshake is accepted; the
    server may close it at once)."""
    headers = [(b"host", b"testserver"), (b"origin", origin.encode())]
    socket = Socket(WebsocketCommunicator(application, "/ws/v1/patron/", headers=headers))
    # The scope is read when the application first runs, after this.
    socket.communicator.scope["client"] = (address, 40000)
    opened.opened.append(socket)
    connected, _ = await socket.communicator.connect(timeout=RECEIVE_TIMEOUT_S)
    assert connected
    return socket
