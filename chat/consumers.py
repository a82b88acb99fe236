"""WebSocket consumers of the chat protocol: they translate frames, nothing more.

Both consumers deliver each conversation's events in ``seq`` order exactly once per connection:
they join the conversation's group *before* replaying from the database, remember the highest
``seq`` sent (the cursor), drop notifications at or below it, and replay from the database
whenever a notification skips ahead (a dropped or out-of-order doorbell) or the heartbeat
finds the database ahead of the cursor (a dropped last doorbell).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from abc import ABCMeta, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, ClassVar, ParamSpec, TypeVar, cast

from asgiref.sync import sync_to_async
from autobahn.exception import Disconnected
from channels.db import DatabaseSyncToAsync
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from channels.utils import await_many_dispatch
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils.translation import gettext as _

from chat import (
    arrivals,
    backpressure,
    doorbell,
    events,
    frames,
    heartbeat,
    outages,
    protocol,
    sharing,
    socket_actions,
)
from chat.errors import ChatError, ServerBusy
from chat.models import Sender
from chat.origins import is_own
from chat.services import fast_path
from reflib import ratelimit

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10
MAX_BAD_FRAMES = 10
MAX_RATE_LIMITED = 20
# Doorbell notices a socket may have waiting before it is asked to catch up from the database
# instead: a socket too slow to keep up costs bounded memory.
INBOX_LIMIT = 200

CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN_ORIGIN = 4403
CLOSE_FLOODING = 4429
CLOSE_BAD_FRAMES = 4400
CLOSE_ACCESS_CHANGED = 4409

P = ParamSpec("P")
R = TypeVar("R")
SLOT_TTL_S = heartbeat.SLOT_TTL_S
slot_take = sync_to_async(ratelimit.slot_take, thread_sensitive=False)
slot_release = sync_to_async(ratelimit.slot_release, thread_sensitive=False)
orm_threads = ThreadPoolExecutor(settings.REFLIB_DB_THREADS, thread_name_prefix="reflib-orm")


def orm(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Run ORM code from a consumer in a thread, closing stale connections around it.

    On PostgreSQL the sockets of a process share a pool of ``REFLIB_DB_THREADS`` threads, each
    with its own connection, so one frame's queries do not wait for another's round trips
    (channels' default runs them all on one thread). SQLite takes one writer at a time, so it
    keeps that single thread. Each socket still awaits its frames one by one.
    """
    if connection.vendor == "sqlite":
        return DatabaseSyncToAsync(function, thread_sensitive=True)
    return DatabaseSyncToAsync(function, thread_sensitive=False, executor=orm_threads)


class QueueReads:
    """One read of a changed waiting list per process, however many of its desks hear it.

    Every open desk of a library hears each change of its waiting list (a chat queued,
    accepted, gone). The desks of one process that show the same libraries share the read made
    for that change, which starts after the change was committed: with N desks open, a change
    costs each process one query, not N.
    """

    def __init__(self, keep: int = 256) -> None:
        self.keep = keep
        self.reads: OrderedDict[tuple[str, tuple[int, ...]], asyncio.Future[frames.DeskQueue]] = (
            OrderedDict()
        )

    async def get(self, change_id: str, library_ids: list[int]) -> frames.DeskQueue:
        key = (change_id, tuple(sorted(library_ids)))
        read = self.reads.get(key)
        if read is None:
            read = asyncio.ensure_future(orm(socket_actions.desk_queue)(library_ids=list(key[1])))
            self.reads[key] = read
            while len(self.reads) > self.keep:
                self.reads.popitem(last=False)
        # Shielded: a desk that disconnects while waiting does not cancel the others' read.
        return frames.DeskQueue(**await asyncio.shield(read))


queue_reads = QueueReads()


class FrameBudget:
    """Frames one socket may send per window (every type: typing, read, end, ping, ...).

    Counted in the process that holds the socket: no round trip per frame. A client can open
    more sockets only up to the socket caps, so this bounds an address's frames too.
    """

    def __init__(self, limit: tuple[int, int]) -> None:
        self.count, self.period = limit
        self.window = 0
        self.spent = 0

    def spend(self) -> None:
        window = int(time.monotonic()) // self.period
        if window != self.window:
            self.window, self.spent = window, 0
        self.spent += 1
        if self.spent > self.count:
            retry_after = max(1, (window + 1) * self.period - int(time.monotonic()))
            raise ChatError(
                "rate_limited", _("You are sending frames too fast."), retry_after_s=retry_after
            )


@dataclass
class Cursor:
    """What one connection has delivered of one conversation."""

    conversation_id: int
    public_id: str
    seq: int
    staff: bool


class ChatConsumer(AsyncWebsocketConsumer, metaclass=ABCMeta):
    """What patron and desk sockets share: framing, errors, cursors, heartbeat."""

    staff = False
    user_id: int | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' own loop, except that a failing channel layer does not end the socket (its
        receive is retried until the layer answers, chat/outages.py) and neither does a write
        to a client that has just vanished."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self._layer_receive, self.channel_name)
        self.base_send = functools.partial(_send_unless_gone, send)
        # The doorbell's notices (chat.doorbell), dispatched in turn with everything else.
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        with contextlib.suppress(StopConsumer):
            await await_many_dispatch(
                [receive, self.channel_receive, self.inbox.get], self.dispatch
            )

    def offer_position(self, frame: frames.QueuePosition) -> None:
        """A queue position, for patron sockets (chat.doorbell.Follower); desks ignore it."""

    def ring(self, notice: dict[str, Any]) -> None:
        """A doorbell notice for a followed conversation (or from the heartbeat). A socket too
        slow to take them keeps one ``chat.resume`` instead of a growing backlog."""
        if self.inbox.qsize() >= INBOX_LIMIT:
            while not self.inbox.empty():
                self.inbox.get_nowait()
            notice = {"type": "chat.resume"}
        self.inbox.put_nowait(notice)

    async def _layer_receive(self, channel: str) -> dict[str, Any]:
        delay = outages.RETRY_FIRST_S
        while True:
            try:
                message: dict[str, Any] = await self.channel_layer.receive(channel)
            except outages.LAYER_ERRORS as error:
                outages.layer_watch.failed(error, "receiving")
                await asyncio.sleep(delay)
                delay = min(delay * 2, outages.RETRY_MAX_S)
                continue
            return message

    async def dispatch(self, message: dict[str, Any]) -> None:
        try:
            await super().dispatch(message)
        except outages.DATABASE_ERRORS as error:
            outages.database_failed(error, f"handling {message['type']}")
            if message["type"] == "websocket.disconnect":
                raise StopConsumer from None
            await self.close(code=outages.CLOSE_TRY_AGAIN)

    async def connect(self) -> None:
        self.cursors: dict[str, Cursor] = {}
        self.bad_frames = 0
        self.rate_limited = 0
        self.frames = FrameBudget(settings.REFLIB_RATE_FRAMES)
        self.closing = False
        self.slots: list[str] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.groups_joined: set[str] = set()
        # Screen shares this socket took part in (share id -> conversation), stopped on close.
        self.shares: dict[str, str] = {}
        self.origin = _header(self.scope, b"origin")
        self.host = _header(self.scope, b"host") or ""
        client = self.scope.get("client") or [None]
        self.address = ratelimit.address_key(client[0])
        outages.layer_watch.add(self)
        await self.accept()
        if not await self.take_slot(
            f"sock:addr:{self.address}", settings.REFLIB_MAX_SOCKETS_PER_ADDRESS
        ):
            return
        await self.opened()

    async def take_slot(self, key: str, limit: int) -> bool:
        """Hold one of ``limit`` socket slots of ``key``; close 4429 when all are taken."""
        if await slot_take(key, self.channel_name, limit=limit, ttl_s=SLOT_TTL_S):
            if key not in self.slots:
                self.slots.append(key)
            return True
        await self.close(code=CLOSE_FLOODING)
        return False

    def held_slots(self) -> list[tuple[str, str]]:
        """The socket-cap slots this socket holds, as (key, member): the heartbeat keeps them."""
        return [(key, self.channel_name) for key in self.slots]

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        # Frames may still arrive between a refused handshake and the close: they are ignored.
        self.closing = True
        await super().close(code=code, reason=reason)

    async def opened(self) -> None:
        """Hook for subclasses: check the handshake, say hello."""

    async def disconnect(self, code: int) -> None:
        for task in self.tasks:
            task.cancel()
        heartbeat.heart().discard(self)
        station = doorbell.station()
        for public_id in self.cursors:
            station.unfollow(public_id, self)
        outages.layer_watch.discard(self)
        for group in self.groups_joined:
            # A member left behind by an outage expires with the group (group_expiry).
            await outages.tolerate_layer(
                self.channel_layer.group_discard(group, self.channel_name), "leaving a group"
            )
        self.groups_joined.clear()
        for key in self.slots:
            await slot_release(key, self.channel_name)
        await self.closed()

    async def closed(self) -> None:
        """Hook for subclasses; keep it short (daphne allows 10 s after a close)."""

    async def join(self, group: str) -> None:
        if group not in self.groups_joined:
            # Joined or not, the group is remembered: the layer's recovery joins it again.
            self.groups_joined.add(group)
            await outages.tolerate_layer(
                self.channel_layer.group_add(group, self.channel_name), "joining a group"
            )

    async def rejoin(self) -> None:
        """Join every group again once the layer is back (a restarted Redis forgot them)."""
        for group in list(self.groups_joined):
            await self.channel_layer.group_add(group, self.channel_name)

    async def layer_recovered(self) -> None:
        """Ask this socket, in its own message order, to catch up from the database."""
        self.ring({"type": "chat.resume"})

    async def chat_resume(self, message: dict[str, Any]) -> None:
        newest = await orm(socket_actions.last_seqs)(conversation_ids=self.followed_ids())
        await self.catch_up(newest)

    async def chat_pulse(self, message: dict[str, Any]) -> None:
        """The process's heartbeat read the newest ``seq`` of every followed conversation."""
        await self.catch_up(message["newest"])

    async def send_json(self, frame: Mapping[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def send_error(self, error: ChatError, frame: dict[str, Any] | None = None) -> None:
        echo = {key: value for key, value in (frame or {}).items() if isinstance(value, str)}
        reply = frames.error(
            code=error.code, detail=error.detail, retry_after_s=error.retry_after_s, echo=echo
        )
        await self.send_json(reply)

    async def websocket_receive(self, message: dict[str, Any]) -> None:
        waited = arrivals.waited(message)
        if waited is not None:
            backpressure.here().waited(waited, "socket queue")
        await super().websocket_receive(message)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        frame: dict[str, Any] | None = None
        try:
            frame = protocol.parse_frame(text_data)
            self.frames.spend()
            await self.handle(frame)
        except ChatError as error:
            await self.refused(error, frame)
            return
        self.bad_frames = 0
        self.rate_limited = 0

    async def refused(self, error: ChatError, frame: dict[str, Any] | None) -> None:
        await self.send_error(error, frame)
        if error.code == "rate_limited" and not isinstance(error, ServerBusy):
            self.rate_limited += 1
            if self.rate_limited >= MAX_RATE_LIMITED:
                await self.close(code=CLOSE_FLOODING)
        elif error.code in ("invalid", "too_large"):
            self.bad_frames += 1
            if self.bad_frames >= MAX_BAD_FRAMES:
                await self.close(code=CLOSE_BAD_FRAMES)

    @abstractmethod
    async def handle(self, frame: dict[str, Any]) -> None:
        """Hand a parsed frame to this side's ``on_<type>`` method (an allow-list of types)."""

    @abstractmethod
    def pulse_share(self) -> tuple[int | None, int | None, list[int], list[tuple[str, str]]]:
        """What the process's heartbeat does for this socket (chat.heartbeat.Beating)."""

    async def store(
        self,
        *,
        cursor: Cursor,
        sender: Sender,
        author_id: int | None,
        author_name: str,
        client_msg_id: str,
        body: str,
        note: bool = False,
    ) -> frames.Ack | None:
        """The ack of a message stored by the fast path; None when the ORM path must decide
        (chat.services.fast_path). A process too far behind refuses it busy first
        (chat.backpressure)."""
        if backpressure.here().overloaded():
            raise ServerBusy(_(fast_path.BUSY))
        event = await fast_path.message_store(
            conversation_id=cursor.conversation_id,
            conversation_public_id=cursor.public_id,
            sender=sender,
            author_id=author_id,
            author_name=author_name,
            client_msg_id=client_msg_id,
            body=body,
            note=note,
        )
        return None if event is None else socket_actions.ack(event)

    # --- delivery ---------------------------------------------------------------------------

    async def follow(self, conversation_id: int, public_id: str, last_seq: int) -> None:
        """Join the conversation's group, then replay everything after ``last_seq``.

        Following a conversation again (a second subscribe, an accept after a subscribe) keeps
        the cursor, so nothing already sent on this connection is sent twice.
        """
        cursor = self.cursors.get(public_id)
        if cursor is None:
            cursor = Cursor(conversation_id, public_id, last_seq, self.staff)
            self.cursors[public_id] = cursor
        await doorbell.station().follow(public_id, self)
        await self.replay(cursor)

    async def replay(self, cursor: Cursor) -> None:
        # Frames are handled one at a time per connection, so no live event interleaves here;
        # the ones queued meanwhile are dropped by the cursor check in chat_event.
        stored = await orm(socket_actions.events_after)(
            conversation_id=cursor.conversation_id, public_id=cursor.public_id, seq=cursor.seq
        )
        for seq, frame, staff_only, librarian_id in stored:
            if seq <= cursor.seq:
                continue
            cursor.seq = seq
            if cursor.staff or not staff_only:
                await self.deliver(frame, librarian_id)

    def followed_ids(self) -> list[int]:
        return [cursor.conversation_id for cursor in self.cursors.values()]

    def behind(self, newest: dict[int, int]) -> bool:
        """Whether ``newest`` (each conversation's last ``seq``) is ahead of a cursor."""
        return any(
            newest.get(cursor.conversation_id, 0) > cursor.seq for cursor in self.cursors.values()
        )

    async def catch_up(self, newest: dict[int, int]) -> None:
        """Replay what a lost notification left behind (one that was the last of its burst
        leaves no gap for ``chat_event`` to notice). ``newest`` is the database's last ``seq``
        of each followed conversation, read with each heartbeat."""
        for cursor in list(self.cursors.values()):
            if newest.get(cursor.conversation_id, 0) > cursor.seq:
                await self.replay(cursor)

    async def chat_event(self, message: dict[str, Any]) -> None:
        frame = message["event"]
        cursor = self.cursors.get(frame["conversation"])
        if cursor is None or frame["seq"] <= cursor.seq:
            return
        if frame["seq"] > cursor.seq + 1:
            # A notification was dropped or overtaken: the database has everything.
            await self.replay(cursor)
            return
        cursor.seq = frame["seq"]
        if cursor.staff or not message["staff_only"]:
            await self.deliver(frame, message.get("librarian_id"))

    async def deliver(self, frame: frames.StoredFrame, librarian_id: int | None) -> None:
        """Send a stored event; ``librarian_id`` is a status event's librarian."""
        await self.send_json(frame)

    async def chat_live(self, message: dict[str, Any]) -> None:
        if message.get("origin") == self.channel_name:
            return
        if "user" in message and not (self.staff and self.user_id == message["user"]):
            return
        audience = message["audience"]
        if audience == "all" or (audience == "staff") == self.staff:
            await self.send_json(message["frame"])

    # --- screen sharing: signalling relayed between the two participants, never stored ------

    async def share(self, frame: dict[str, Any], step: str) -> None:
        """Check a ``share_*`` frame, relay it to the other participant, echo a consent."""
        if step not in sharing.STEPS:
            raise ChatError("invalid", f"Unknown frame type {frame['type']!r}.")
        checked_step = cast(sharing.Step, step)
        fields: dict[str, Any] = {"share": protocol.share_id_field(frame)}
        if step == "reply":
            fields["accept"] = protocol.bool_field(frame, "accept")
        elif step in ("offer", "answer"):
            fields["sdp"] = protocol.sdp_field(frame)
        elif step == "candidate":
            fields["candidate"] = protocol.candidate_field(frame)
        elif step == "stop" and frame.get("reason") is not None:
            fields["reason"] = protocol.stop_reason_field(frame)
        relay = await self.share_checked(frame, checked_step, fields)
        if step == "stop" or (step == "reply" and not fields["accept"]):
            self.shares.pop(fields["share"], None)
        else:
            self.shares[fields["share"]] = relay.public_id
        if self.staff:
            await events.publish_live_now(
                relay.public_id, relay.frame, origin=self.channel_name, audience="patron"
            )
        else:
            await events.publish_live_now(
                relay.public_id,
                relay.frame,
                origin=self.channel_name,
                audience="staff",
                user=relay.librarian_id,
            )
        if step == "reply" and fields["accept"]:
            await self.send_json(relay.frame)  # the viewer's copy, with the ICE servers

    @abstractmethod
    async def share_checked(
        self, frame: dict[str, Any], step: sharing.Step, fields: dict[str, Any]
    ) -> socket_actions.ShareRelay:
        """Check a sharing frame against this side's rights, in the database's thread."""

    async def stop_shares(self) -> None:
        """A socket that closes mid-share ends it: the other side must not wait for ever."""
        for share_id, public_id in list(self.shares.items()):
            frame = {"type": "share_stop", "conversation": public_id, "share": share_id}
            # Already over when refused (stopped by the other side, or the chat ended).
            with contextlib.suppress(ChatError):
                await self.share(frame, "stop")


class PatronConsumer(ChatConsumer):
    """``/ws/v1/patron/``: one conversation, authenticated by the token in the hello frame."""

    staff = False
    # Set by a good hello; None before (and when the handshake was refused before opened()).
    session: socket_actions.PatronSession | None = None
    # The last ``queue`` frame this socket sent.
    position: frames.QueuePosition | None = None
    # The frames a patron may send after hello, each handled by its ``on_<type>`` method.
    frame_types: ClassVar[frozenset[str]] = frozenset(
        {"send", "typing", "read", "end", "checkin_answer", "ping", "hello"}
    )

    async def opened(self) -> None:
        allowed = await orm(socket_actions.origin_allowed_anywhere)(
            origin=self.origin, host=self.host
        )
        if not allowed:
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        self.tasks.append(asyncio.create_task(self._hello_deadline()))

    async def _hello_deadline(self) -> None:
        await asyncio.sleep(HELLO_TIMEOUT_S)
        if self.session is None:
            await self.close(code=CLOSE_UNAUTHORIZED)

    async def refused(self, error: ChatError, frame: dict[str, Any] | None) -> None:
        if self.session is None:
            # PROTOCOL.md: the first frame must be a valid hello.
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        await super().refused(error, frame)

    async def closed(self) -> None:
        if self.session is not None:
            await self.stop_shares()
            await orm(socket_actions.patron_left)(session=self.session)

    async def share_checked(
        self, frame: dict[str, Any], step: sharing.Step, fields: dict[str, Any]
    ) -> socket_actions.ShareRelay:
        assert self.session is not None
        return await orm(socket_actions.patron_share)(
            session=self.session, step=step, fields=fields
        )

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if self.session is None:
            if kind != "hello":
                await self.close(code=CLOSE_UNAUTHORIZED)
                return
            await self.hello(frame)
            return
        if kind.startswith("share_"):
            await self.share(frame, kind.removeprefix("share_"))
        elif kind in self.frame_types:
            await getattr(self, f"on_{kind}")(self.session, frame)
        else:
            raise ChatError("invalid", f"Unknown frame type {kind!r}.")

    async def on_send(self, session: socket_actions.PatronSession, frame: dict[str, Any]) -> None:
        client_msg_id = protocol.client_msg_id_field(frame)
        body = protocol.body_field(frame)
        socket_actions.patron_message_allowed(session=session)
        ack = await self.store(
            cursor=self.cursors[session.public_id],
            sender=Sender.PATRON,
            author_id=None,
            author_name=session.display_name,
            client_msg_id=client_msg_id,
            body=body,
        )
        if ack is None:
            ack = await orm(socket_actions.patron_send)(
                session=session, client_msg_id=client_msg_id, body=body
            )
        await self.send_json(ack)

    async def on_typing(self, session: socket_actions.PatronSession, frame: dict[str, Any]) -> None:
        active = protocol.bool_field(frame, "active")
        await events.publish_live_now(
            session.public_id,
            frames.typing(conversation=session.public_id, sender="patron", active=active),
            origin=self.channel_name,
            audience="staff",
        )

    async def on_read(self, session: socket_actions.PatronSession, frame: dict[str, Any]) -> None:
        seq = protocol.int_field(frame, "seq", minimum=0, maximum=2**31)
        await orm(socket_actions.patron_read)(session=session, seq=seq or 0)

    async def on_end(self, session: socket_actions.PatronSession, frame: dict[str, Any]) -> None:
        await orm(socket_actions.patron_end)(session=session)

    async def on_checkin_answer(
        self, session: socket_actions.PatronSession, frame: dict[str, Any]
    ) -> None:
        checkin_id = protocol.text_field(frame, "id", max_length=24)
        answer = protocol.text_field(frame, "answer", max_length=10)
        await orm(socket_actions.patron_checkin_answer)(
            session=session, checkin_id=checkin_id, answer=answer
        )

    async def on_ping(self, session: socket_actions.PatronSession, frame: dict[str, Any]) -> None:
        await self.send_json(frames.pong())

    async def on_hello(self, session: socket_actions.PatronSession, frame: dict[str, Any]) -> None:
        raise ChatError("conflict", "This connection has already said hello.")

    async def hello(self, frame: dict[str, Any]) -> None:
        token = frame.get("token")
        last_seq = frame.get("last_seq", 0)
        if (
            not isinstance(token, str)
            or isinstance(last_seq, bool)
            or not isinstance(last_seq, int)
            or last_seq < 0
        ):
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        try:
            session = await orm(socket_actions.patron_hello)(
                token=token, origin=self.origin, host=self.host, address=self.address
            )
        except ChatError as error:
            await self.close(
                code=CLOSE_FORBIDDEN_ORIGIN if error.code == "forbidden" else CLOSE_UNAUTHORIZED
            )
            return
        if not await self.take_slot(
            f"sock:token:{session.token_hash}", settings.REFLIB_MAX_SOCKETS_PER_TOKEN
        ):
            return
        self.session = session
        await fast_path.prepare()
        await self.send_json(
            frames.welcome(
                conversation=session.public_id,
                status=cast(frames.StatusName, session.status),
                last_seq=session.last_seq,
            )
        )
        await self.follow(session.conversation_id, session.public_id, last_seq)
        position = await orm(socket_actions.patron_position)(session=session)
        if position is not None:
            self.position = position
            await self.send_json(position)
        heartbeat.heart().add(self)

    def pulse_share(self) -> tuple[int | None, int | None, list[int], list[tuple[str, str]]]:
        conversation_id = self.session.conversation_id if self.session else None
        return conversation_id, None, self.followed_ids(), self.held_slots()

    def offer_position(self, frame: frames.QueuePosition) -> None:
        # One notice per queue change reaches every waiting patron (chat.doorbell): only the
        # ones whose place or wait changed hear of it, and the others cost a comparison.
        if frame != self.position:
            self.position = frame
            self.ring({"type": "chat.live", "frame": frame, "audience": "patron"})


class DeskConsumer(ChatConsumer):
    """``/ws/v1/desk/``: a librarian's desk, authenticated by the Django session."""

    staff = True
    # The desk's own frames, each handled by its ``on_<type>(frame)`` method.
    desk_frame_types: ClassVar[frozenset[str]] = frozenset({"ping", "presence"})
    # Frames about one conversation (``share`` stands for every ``share_*``), each handled by
    # its ``on_<type>(frame, public_id)`` method.
    conversation_frame_types: ClassVar[frozenset[str]] = frozenset(
        {
            "accept",
            "subscribe",
            "send",
            "note",
            "typing",
            "read",
            "transfer",
            "close",
            "checkin",
            "share",
            "block",
        }
    )

    async def opened(self) -> None:
        user = self.scope.get("user")
        if not _header_origin_is_own(self.origin, self.host):
            await self.close(code=CLOSE_FORBIDDEN_ORIGIN)
            return
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        desk = await orm(socket_actions.desk_open)(user=user)
        if desk is None:
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.user: User = user
        self.user_id = user.pk
        self.name: str = desk.welcome["user"]
        await fast_path.prepare()
        self.library_ids = desk.library_ids
        for library_id in desk.library_ids:
            await self.join(events.library_desk_group(library_id))
        await self.join(events.user_group(user.pk))
        await self.send_json(desk.welcome)
        heartbeat.heart().add(self)

    def pulse_share(self) -> tuple[int | None, int | None, list[int], list[tuple[str, str]]]:
        return None, self.user_id, self.followed_ids(), self.held_slots()

    async def handle(self, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind in self.desk_frame_types:
            await getattr(self, f"on_{kind}")(frame)
            return
        public_id = protocol.text_field(frame, "conversation", max_length=24)
        method = "share" if kind.startswith("share_") else kind
        if method not in self.conversation_frame_types:
            raise ChatError("invalid", f"Unknown frame type {kind!r}.")
        await getattr(self, f"on_{method}")(frame, public_id)

    async def on_ping(self, frame: dict[str, Any]) -> None:
        await self.send_json(frames.pong())
        await orm(socket_actions.desk_alive)(user=self.user)

    async def on_presence(self, frame: dict[str, Any]) -> None:
        state = protocol.text_field(frame, "state", max_length=10)
        await orm(socket_actions.desk_presence)(user=self.user, state=state)

    async def on_accept(self, frame: dict[str, Any], public_id: str) -> None:
        ref = await orm(socket_actions.desk_accept)(user=self.user, public_id=public_id)
        await self.send_json(frames.accepted(conversation=public_id))
        await self.follow(ref.conversation_id, ref.public_id, 0)

    async def on_subscribe(self, frame: dict[str, Any], public_id: str) -> None:
        last_seq = protocol.int_field(frame, "last_seq", minimum=0, maximum=2**31)
        ref = await orm(socket_actions.desk_view)(user=self.user, public_id=public_id)
        await self.follow(ref.conversation_id, ref.public_id, last_seq or 0)

    async def on_send(self, frame: dict[str, Any], public_id: str, *, note: bool = False) -> None:
        client_msg_id = protocol.client_msg_id_field(frame)
        body = protocol.body_field(frame)
        socket_actions.desk_message_allowed(user_id=self.user.pk)
        cursor = self.cursors.get(public_id)
        ack = None
        if cursor is not None:
            # A followed conversation was visible when followed, and a change of access closes
            # the desk (4409): the one statement checks the rest.
            ack = await self.store(
                cursor=cursor,
                sender=Sender.LIBRARIAN,
                author_id=self.user.pk,
                author_name=self.name,
                client_msg_id=client_msg_id,
                body=body,
                note=note,
            )
        if ack is None:
            ack = await orm(socket_actions.desk_send)(
                user=self.user,
                public_id=public_id,
                client_msg_id=client_msg_id,
                body=body,
                note=note,
            )
        await self.send_json(ack)

    async def on_note(self, frame: dict[str, Any], public_id: str) -> None:
        await self.on_send(frame, public_id, note=True)

    async def on_typing(self, frame: dict[str, Any], public_id: str) -> None:
        active = protocol.bool_field(frame, "active")
        cursor = self._followed(public_id)
        await events.publish_live_now(
            cursor.public_id,
            frames.typing(conversation=cursor.public_id, sender="librarian", active=active),
            origin=self.channel_name,
        )

    async def on_read(self, frame: dict[str, Any], public_id: str) -> None:
        seq = protocol.int_field(frame, "seq", minimum=0, maximum=2**31)
        self._followed(public_id)
        await orm(socket_actions.desk_read)(user=self.user, public_id=public_id, seq=seq or 0)

    async def on_transfer(self, frame: dict[str, Any], public_id: str) -> None:
        await orm(socket_actions.desk_transfer)(
            user=self.user,
            public_id=public_id,
            to_user=protocol.text_field(frame, "to_user", max_length=150, required=False),
            to_queue=protocol.text_field(frame, "to_queue", max_length=101, required=False),
            note=protocol.text_field(frame, "note", max_length=protocol.MAX_BODY, required=False),
        )

    async def on_close(self, frame: dict[str, Any], public_id: str) -> None:
        read_level = protocol.int_field(frame, "read_level", minimum=1, maximum=6, required=False)
        tags = frame.get("tags", [])
        if not isinstance(tags, list):
            raise ChatError("invalid", '"tags" must be a list of text.')
        await orm(socket_actions.desk_close)(
            user=self.user, public_id=public_id, read_level=read_level, tags=tags
        )

    async def on_checkin(self, frame: dict[str, Any], public_id: str) -> None:
        await orm(socket_actions.desk_checkin)(user=self.user, public_id=public_id)

    async def on_share(self, frame: dict[str, Any], public_id: str) -> None:
        self._followed(public_id)
        await self.share(frame, frame["type"].removeprefix("share_"))

    async def on_block(self, frame: dict[str, Any], public_id: str) -> None:
        hours = protocol.int_field(frame, "hours", minimum=1, maximum=24 * 90, required=False)
        reason = protocol.text_field(frame, "reason", max_length=200, required=False)
        await orm(socket_actions.desk_block)(
            user=self.user, public_id=public_id, hours=hours or 24, reason=reason
        )

    async def deliver(self, frame: frames.StoredFrame, librarian_id: int | None) -> None:
        # Display names need not be unique: the desk learns from the user's id whether the
        # conversation is this librarian's (docs/protocol.md, section 11).
        if frame["type"] == "status":
            mine: frames.Status = {**frame, "mine": librarian_id == self.user_id}
            await self.send_json(mine)
            return
        await self.send_json(frame)

    async def chat_access_changed(self, message: dict[str, Any]) -> None:
        """The staff member's memberships changed: their groups and cursors are stale."""
        await self.close(code=CLOSE_ACCESS_CHANGED)

    async def closed(self) -> None:
        await self.stop_shares()

    async def share_checked(
        self, frame: dict[str, Any], step: sharing.Step, fields: dict[str, Any]
    ) -> socket_actions.ShareRelay:
        public_id = protocol.text_field(frame, "conversation", max_length=24)
        return await orm(socket_actions.desk_share)(
            user=self.user, public_id=public_id, step=step, fields=fields
        )

    def _followed(self, public_id: str) -> Cursor:
        cursor = self.cursors.get(public_id)
        if cursor is None:
            raise ChatError("not_found", _("Subscribe to the conversation first."))
        return cursor

    async def chat_queue_changed(self, message: dict[str, Any]) -> None:
        await self.send_json(await queue_reads.get(message["id"], self.library_ids))

    async def chat_resume(self, message: dict[str, Any]) -> None:
        await super().chat_resume(message)
        # Queue changes were not heard during the outage either.
        await self.chat_queue_changed({"id": uuid.uuid4().hex})

    async def chat_user_conversation(self, message: dict[str, Any]) -> None:
        """A colleague transferred a conversation to this librarian: follow it."""
        ref = await orm(socket_actions.desk_view)(user=self.user, public_id=message["conversation"])
        await self.send_json(frames.assigned(conversation=ref.public_id, reason=message["reason"]))
        await self.follow(ref.conversation_id, ref.public_id, 0)


async def _send_unless_gone(send: Any, message: dict[str, Any]) -> None:
    """A client that vanished without a close (a cut connection) is noticed by daphne a moment
    after the write fails: what was being sent is lost with the socket, and the client replays
    it when it resumes; the disconnect follows as usual."""
    with contextlib.suppress(Disconnected):
        await send(message)


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _header_origin_is_own(origin: str | None, host: str) -> bool:
    return origin is None or is_own(origin, host)
