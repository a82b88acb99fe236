"""ASGI application of the chat relay benchmark: reflib's real application plus a bare relay.

``bench.chat_relay`` serves this with daphne. Every path goes to ``reflib.asgi.application``
unchanged, except the WebSocket route ``/ws/bench/relay/?group=NAME``: a bare Channels group
relay (join the group on connect, ``group_send`` each text frame to it, send each group message
on). Both run in the same process on the same channel layer, so one run measures the full chat
path against the least any Channels relay can do.

``BENCH_CHANNEL_LAYER=redis|pubsub`` (default ``redis``) in the daphne environment picks the
layer: ``redis`` is reflib's own ``RedisChannelLayer`` as configured in reflib/settings.py;
``pubsub`` swaps in ``channels_redis.pubsub.RedisPubSubChannelLayer`` on the same hosts and
prefix. reflib has no such setting; the swap exists so that the backends can be compared.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reflib.settings")

from django.conf import settings

RELAY_PATH = "/ws/bench/relay/"
GROUP = re.compile(r"[A-Za-z0-9_.-]{1,60}")


def _choose_layer(name: str) -> None:
    if name == "redis":
        return
    if name != "pubsub":
        raise SystemExit(f"BENCH_CHANNEL_LAYER must be redis or pubsub, not {name!r}")
    config = cast(dict[str, Any], settings.CHANNEL_LAYERS)["default"]["CONFIG"]
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": config["hosts"], "prefix": config["prefix"]},
        }
    }


# Before reflib.asgi: Channels builds the layer on first use, from the settings of that moment.
_choose_layer(os.environ.get("BENCH_CHANNEL_LAYER", "redis"))

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402

from reflib.asgi import application as reflib_application  # noqa: E402


class RelayConsumer(AsyncWebsocketConsumer):
    """The bare relay: no authentication, no storage, no parsing of the frames."""

    async def connect(self) -> None:
        names = parse_qs(self.scope["query_string"].decode()).get("group", [])
        if len(names) != 1 or not GROUP.fullmatch(names[0]):
            await self.close(code=4400)
            return
        self.group = f"bench.relay.{names[0]}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        await self.channel_layer.group_send(
            self.group, {"type": "relay.message", "text": text_data}
        )

    async def relay_message(self, message: dict[str, Any]) -> None:
        await self.send(text_data=message["text"])


relay = RelayConsumer.as_asgi()


async def application(scope: dict[str, Any], receive: Callable[..., Any], send: Any) -> None:
    if scope["type"] == "websocket" and scope["path"] == RELAY_PATH:
        await relay(scope, receive, send)
    else:
        await reflib_application(scope, receive, send)
