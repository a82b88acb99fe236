"""The chat protocol over WebSockets (PROTOCOL.md), through the real ASGI application.

Every test talks to ``reflib.asgi.application`` (routing, AuthMiddlewareStack, consumers) with
``WebsocketCommunicator``; the ``sockets`` fixture disconnects every socket and then checks that
none stayed in a channel-layer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from channels.db import database_sync_to_async
from daphne.ws_protocol import WebSocketFactory
from django.contrib.auth.models import User
from django.core.cache import cache
from django.utils import timezone
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pytest_django import Settings

from chat import arrivals, backpressure, consumers, doorbell, events, frames, heartbeat, services
from chat.errors import ChatError
from chat.models import (
    Conversation,
    Event,
    EventKind,
    Participant,
    Presence,
    PresenceState,
    Sender,
    Status,
    hash_token,
)
from chat.services import fast_path
from reflib.models import Role
from reflib.services import rollover_partnership_agree, staff_upsert
from tests.chat.conftest import (
    OTHER_ORIGIN,
    OWN_ORIGIN,
    PATRON_IP,
    Frame,
    Socket,
    Sockets,
    Started,
    fresh,
    go_available,
    group_memberships,
    start,
    start_accepted,
    stored_events,
)
from tests.conftest import Cast

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

db = database_sync_to_async


def seqs(frames: list[Frame]) -> list[int]:
    return [frame["seq"] for frame in stored_events(frames)]


def of_type(frames: list[Frame], kind: str) -> list[Frame]:
    return [frame for frame in frames if frame.get("type") == kind]


async def accepted_chat(sockets: Sockets, cast: Cast) -> tuple[Started, Any, Any]:
    """A waiting patron whom Lena accepts at her desk; both sockets drained."""
    await db(go_available)(cast.librarian)
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    desk, _desk_welcome = await sockets.desk(cast.librarian)
    await desk.send({"type": "accept", "conversation": started.public_id})
    await desk.recv_until("accepted", conversation=started.public_id)
    await patron.recv_until("status", status="active")
    await asyncio.gather(desk.drain(), patron.drain())
    return started, patron, desk


# --- patron: hello, welcome, replay ----------


async def test_patron_hello_gets_welcome_then_the_stored_events_then_the_queue_position(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue, "Do you have The Hobbit?")

    patron, welcome = await sockets.patron(started)
    frames = await patron.drain()

    assert welcome == {
        "type": "welcome",
        "conversation": started.public_id,
        "status": "queued",
        "last_seq": 2,
    }
    question, queued, position = frames
    assert question["type"] == "message"
    assert question["seq"] == 1
    assert question["from"] == "patron"
    assert question["name"] == "Pat Patron"
    assert question["body"] == "Do you have The Hobbit?"
    assert question["conversation"] == started.public_id
    assert question["client_msg_id"] is None
    assert question["id"]
    assert question["ts"].endswith("+00:00")
    assert queued["type"] == "status"
    assert queued["seq"] == 2
    assert queued["status"] == "queued"
    assert queued["librarian"] is None
    assert position == {"type": "queue", "position": 1, "estimated_wait_s": None}
    assert (await db(fresh)(started)).patron_connected


async def test_patron_hello_with_last_seq_replays_only_newer_events(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)

    patron, welcome = await sockets.patron(started, last_seq=1)
    frames = await patron.drain()

    assert welcome["last_seq"] == 2
    assert seqs(frames) == [2]
    assert of_type(frames, "queue")


async def test_patron_of_the_widget_panel_may_use_reflibs_own_origin(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)

    _patron, welcome = await sockets.patron(started, origin=OWN_ORIGIN)

    assert welcome["conversation"] == started.public_id


async def test_patron_hello_with_an_unknown_token_is_closed_4401(
    cast: Cast, sockets: Sockets
) -> None:
    await db(start)(cast.queue)
    patron = await sockets.patron_socket()

    await patron.send({"type": "hello", "token": "x" * 43, "last_seq": 0})

    assert await patron.close_code() == 4401


def _ended(started: Started, *, ago_s: int) -> None:
    services.conversation_end_by_patron(conversation_id=started.pk)
    Conversation.objects.filter(pk=started.pk).update(
        closed_at=timezone.now() - timedelta(seconds=ago_s)
    )


async def test_an_ended_chat_still_opens_for_its_patron_within_the_token_window(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_PATRON_TOKEN_WINDOW_S = 600
    started = await db(start)(cast.queue)
    await db(_ended)(started, ago_s=590)

    patron, welcome = await sockets.patron(started)
    frames = await patron.drain()

    assert welcome["status"] == "abandoned"
    assert of_type(frames, "status")[-1]["status"] == "abandoned"


async def test_after_the_token_window_hello_is_closed_4401(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_PATRON_TOKEN_WINDOW_S = 600
    started = await db(start)(cast.queue)
    await db(_ended)(started, ago_s=601)
    patron = await sockets.patron_socket()

    await patron.send({"type": "hello", "token": started.token, "last_seq": 0})

    assert await patron.close_code() == 4401


async def test_an_open_chat_opens_however_long_ago_it_started(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_PATRON_TOKEN_WINDOW_S = 0
    started = await db(start)(cast.queue)
    await db(Conversation.objects.filter(pk=started.pk).update)(
        created_at=timezone.now() - timedelta(days=2)
    )

    _patron, welcome = await sockets.patron(started)

    assert welcome["status"] == "queued"


async def test_patron_who_says_no_hello_in_time_is_closed_4401(
    cast: Cast, sockets: Sockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "HELLO_TIMEOUT_S", 0.2)
    patron = await sockets.patron_socket()

    assert await patron.close_code() == 4401


async def test_patron_whose_first_frame_is_not_hello_is_closed_4401(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron = await sockets.patron_socket()

    await patron.send({"type": "send", "client_msg_id": "m1", "body": "hi", "token": started.token})

    assert await patron.close_code() == 4401
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 2


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null"], ids=["origin-no-library-allows", "origin-null"]
)
async def test_patron_handshake_from_a_refused_origin_is_closed_4403(
    cast: Cast, sockets: Sockets, origin: str
) -> None:
    patron = await sockets.patron_socket(origin)

    assert await patron.close_code() == 4403


async def test_patron_hello_from_another_librarys_origin_is_closed_4403(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron = await sockets.patron_socket(OTHER_ORIGIN)  # allowed for "other", not for "demo"

    await patron.send({"type": "hello", "token": started.token, "last_seq": 0})

    assert await patron.close_code() == 4403
    assert not (await db(fresh)(started)).patron_connected


# --- patron: frames ----------


async def test_patron_send_is_acknowledged_with_seq_and_id_then_delivered_once(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    await patron.send({"type": "send", "client_msg_id": "m-1", "body": "Hardback, please"})
    frames = await patron.drain()

    stored = await db(Event.objects.get)(conversation_id=started.pk, client_msg_id="m-1")
    assert of_type(frames, "ack") == [
        {"type": "ack", "client_msg_id": "m-1", "seq": 3, "id": stored.public_id}
    ]
    assert stored.body == "Hardback, please"
    assert stored.sender == Sender.PATRON
    assert seqs(frames) == [3]


# The answer to message m-1 when the process is too busy to store it (back-pressure).
REFUSED_BUSY = {
    "type": "error",
    "code": "rate_limited",
    "detail": fast_path.BUSY,
    "retry_after_s": 1,
    "client_msg_id": "m-1",
}


async def _patron_where_150_ms_is_overload(
    cast: Cast, sockets: Sockets, settings: Settings
) -> tuple[Started, Socket]:
    """A started chat and its patron's socket, welcome read, on a process that counts a wait of
    150 ms as overload (back-pressure's tests)."""
    settings.REFLIB_OVERLOAD_LAG_MS = 150
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()
    return started, patron


@pytest.mark.postgres
async def test_a_message_that_finds_no_free_database_connection_is_refused_busy_not_flooding(
    cast: Cast, sockets: Sockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An overloaded process refuses with rate_limited and a retry time (the client sends again),
    # however many times in a row: the client did nothing wrong, so no 4429 and no 4503.
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    @contextlib.asynccontextmanager
    async def no_connection(pool: object, **options: object) -> AsyncIterator[None]:
        raise PoolTimeout("couldn't get a connection after 3.00 sec")
        yield

    with monkeypatch.context() as busy:
        busy.setattr(AsyncConnectionPool, "connection", no_connection)
        for _ in range(consumers.MAX_RATE_LIMITED + 5):
            await patron.send({"type": "send", "client_msg_id": "m-1", "body": "Anyone?"})
        refused = await patron.drain()
    await patron.send({"type": "send", "client_msg_id": "m-1", "body": "Anyone?"})
    after = await patron.drain()

    assert refused == [REFUSED_BUSY] * (consumers.MAX_RATE_LIMITED + 5)
    assert of_type(after, "ack") == [
        {"type": "ack", "client_msg_id": "m-1", "seq": 3, "id": mock.ANY}
    ]
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 3


async def test_a_process_whose_event_loop_falls_behind_refuses_messages_busy_until_it_catches_up(
    cast: Cast, sockets: Sockets, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # Back-pressure: a message that finds the process's loop far behind is refused before any
    # database work, and the client's resend after retry_after_s is stored exactly once.
    started, patron = await _patron_where_150_ms_is_overload(cast, sockets, settings)
    frame = {"type": "send", "client_msg_id": "m-1", "body": "Anyone?"}

    # The whole process stalls, as when it is handed more than it can do.
    time.sleep(0.6)  # noqa: ASYNC251
    await asyncio.sleep(0.05)  # the gauge, overdue, reads the lag
    await patron.send(frame)
    refused = await patron.drain()
    acks: list[Frame] = []
    for _attempt in range(10):  # the client's resends, each after retry_after_s
        await asyncio.sleep(backpressure.SHED_S)
        await patron.send(frame)
        acks = of_type(await patron.drain(), "ack")
        if acks:
            break

    assert refused == [REFUSED_BUSY]
    assert acks == [{"type": "ack", "client_msg_id": "m-1", "seq": 3, "id": mock.ANY}]
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 3
    assert "event loop " in caplog.text
    assert "new messages are refused busy" in caplog.text
    assert "caught up; 1 messages were refused busy" in caplog.text


async def test_a_frame_that_waited_long_in_its_sockets_queue_is_refused_busy_and_its_resend_stored(
    cast: Cast, sockets: Sockets, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    # The third place a backlog builds, where neither the loop nor the pool shows it: daphne
    # has read the frame (and stamped it, chat.arrivals) but the socket's consumer is still
    # busy with the frames before it. A frame that waited too long there is refused.
    started, patron = await _patron_where_150_ms_is_overload(cast, sockets, settings)
    text = json.dumps({"type": "send", "client_msg_id": "m-1", "body": "Anyone?"})

    await patron.communicator.send_input(
        {"type": "websocket.receive", "text": text, arrivals.ARRIVED: time.monotonic() - 0.4}
    )
    refused = await patron.drain()
    await asyncio.sleep(backpressure.SHED_S)
    await patron.communicator.send_input(
        {"type": "websocket.receive", "text": text, arrivals.ARRIVED: time.monotonic()}
    )
    after = await patron.drain()

    assert refused == [REFUSED_BUSY]
    assert of_type(after, "ack") == [
        {"type": "ack", "client_msg_id": "m-1", "seq": 3, "id": mock.ANY}
    ]
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 3
    assert "socket queue " in caplog.text


def test_daphne_stamps_each_frame_it_reads_with_the_time_it_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the consumer measures from: the protocol that reflib.asgi makes daphne build.
    monkeypatch.setattr(WebSocketFactory, "protocol", WebSocketFactory.protocol)
    arrivals.install()

    protocol = WebSocketFactory.protocol()
    protocol.application_queue = asyncio.Queue()
    before = time.monotonic()
    protocol.onMessage(b'{"type":"ping"}', False)
    protocol.onMessage(b"\x00", True)
    text, binary = protocol.application_queue.get_nowait(), protocol.application_queue.get_nowait()

    assert text == {
        "type": "websocket.receive",
        "text": '{"type":"ping"}',
        arrivals.ARRIVED: mock.ANY,
    }
    assert binary == {"type": "websocket.receive", "bytes": b"\x00", arrivals.ARRIVED: mock.ANY}
    assert before <= text[arrivals.ARRIVED] <= binary[arrivals.ARRIVED] <= time.monotonic()


@pytest.mark.postgres
async def test_messages_that_wait_long_for_a_database_connection_make_the_next_ones_refused_busy(
    cast: Cast, sockets: Sockets, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The other place a backlog builds: the pool's queue. The message that waited is stored;
    # the ones after it are refused until the waits are short again.
    _started, patron = await _patron_where_150_ms_is_overload(cast, sockets, settings)
    connection = AsyncConnectionPool.connection

    @contextlib.asynccontextmanager
    async def slow_connection(pool: AsyncConnectionPool, **options: Any) -> AsyncIterator[Any]:
        await asyncio.sleep(0.3)  # as when every connection is busy with other messages
        async with connection(pool, **options) as conn:
            yield conn

    with monkeypatch.context() as busy:
        busy.setattr(AsyncConnectionPool, "connection", slow_connection)
        await patron.send({"type": "send", "client_msg_id": "m-0", "body": "Hello?"})
        waited = await patron.recv_until("ack")
    await patron.send({"type": "send", "client_msg_id": "m-1", "body": "Anyone?"})
    refused = await patron.drain()
    await asyncio.sleep(backpressure.SHED_S)
    await patron.send({"type": "send", "client_msg_id": "m-1", "body": "Anyone?"})
    after = await patron.drain()

    assert waited == {"type": "ack", "client_msg_id": "m-0", "seq": 3, "id": mock.ANY}
    assert of_type(refused, "error") == [REFUSED_BUSY]
    assert of_type(after, "ack") == [
        {"type": "ack", "client_msg_id": "m-1", "seq": 4, "id": mock.ANY}
    ]


async def test_patron_resend_of_a_client_msg_id_gets_the_same_ack_and_stores_nothing_new(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    frame = {"type": "send", "client_msg_id": "retry-me", "body": "Are you there?"}
    await patron.send(frame)
    first = await patron.drain()
    await patron.send(frame)
    second = await patron.drain()

    (ack,) = of_type(first, "ack")
    assert ack["seq"] == 3
    assert seqs(first) == [3]
    assert second == [ack]
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 3


INVALID_PATRON_FRAMES: list[Frame | str] = [
    {"type": "send", "client_msg_id": "m1", "body": "x" * 4001},
    {"type": "send", "client_msg_id": "m1", "body": ""},
    {"type": "send", "client_msg_id": "m1", "body": "   \n "},
    {"type": "send", "body": "no client_msg_id"},
    {"type": "send", "client_msg_id": "m" * 65, "body": "client_msg_id too long"},
    {"type": "send", "client_msg_id": 7, "body": "client_msg_id not text"},
    {"type": "dance"},
    {"type": "typing", "active": "yes"},
    {"type": "read", "seq": -1},
    {"type": "checkin_answer", "id": "x" * 25, "answer": "yes"},
    "{not json",
    "[1, 2]",
    '{"no": "type"}',
]


async def test_invalid_patron_frames_get_error_invalid_and_the_socket_stays_open(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    for frame in INVALID_PATRON_FRAMES:
        await patron.send_text(frame if isinstance(frame, str) else json.dumps(frame))
        error = await patron.recv()
        await patron.send({"type": "ping"})
        pong = await patron.recv()

        assert (error["type"], error["code"]) == ("error", "invalid"), frame
        assert error["detail"]
        if isinstance(frame, dict) and isinstance(frame.get("client_msg_id"), str):
            assert error["client_msg_id"] == frame["client_msg_id"]
        assert pong == {"type": "pong"}, frame
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 2


async def test_binary_frame_gets_error_invalid(cast: Cast, sockets: Sockets) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    await patron.send_bytes(b'{"type": "ping"}')

    error = await patron.recv()
    assert error["type"] == "error"
    assert error["code"] == "invalid"
    await patron.send({"type": "ping"})
    assert await patron.recv() == {"type": "pong"}


async def test_frame_over_16_kb_gets_error_too_large(cast: Cast, sockets: Sockets) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    await patron.send_text(json.dumps({"type": "ping", "padding": "x" * 16_384}))

    error = await patron.recv()
    assert error["type"] == "error"
    assert error["code"] == "too_large"
    await patron.send({"type": "ping"})
    assert await patron.recv() == {"type": "pong"}


async def test_ten_bad_frames_in_a_row_close_the_socket_4400(cast: Cast, sockets: Sockets) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    for _ in range(consumers.MAX_BAD_FRAMES):
        await patron.send({"type": "dance"})
        assert (await patron.recv())["code"] == "invalid"

    assert await patron.close_code() == 4400


async def test_a_good_frame_resets_the_count_of_bad_frames(cast: Cast, sockets: Sockets) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    for _ in range(2):
        for _ in range(consumers.MAX_BAD_FRAMES - 1):
            await patron.send({"type": "dance"})
            assert (await patron.recv())["code"] == "invalid"
        await patron.send({"type": "ping"})
        assert await patron.recv() == {"type": "pong"}

    assert await patron.nothing()


async def _clear_of_the_rate_window_edge(period: int) -> None:
    # The limiter counts in fixed windows; a test that straddled a window's end would see
    # its count restart.
    if period - time.time() % period < 2:
        await asyncio.sleep(2.1)


async def test_patron_over_the_message_rate_gets_rate_limited_with_retry_after(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_RATE_MESSAGES = (3, 60)
    await db(cache.clear)()
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()
    await _clear_of_the_rate_window_edge(60)

    for number in range(3):
        await patron.send({"type": "send", "client_msg_id": f"ok-{number}", "body": "hi"})
        await patron.recv_until("ack", client_msg_id=f"ok-{number}")
    await patron.send({"type": "send", "client_msg_id": "too-fast", "body": "hi"})
    error = await patron.recv_until("error")

    assert error["code"] == "rate_limited"
    assert error["client_msg_id"] == "too-fast"
    assert isinstance(error["retry_after_s"], int)
    assert 1 <= error["retry_after_s"] <= 60
    assert not await db(
        Event.objects.filter(conversation_id=started.pk, client_msg_id="too-fast").exists
    )()
    await patron.send({"type": "ping"})
    assert await patron.recv_until("pong")


async def test_twenty_rate_limited_frames_in_a_row_close_the_socket_4429(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_RATE_MESSAGES = (3, 60)
    await db(cache.clear)()
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()
    await _clear_of_the_rate_window_edge(60)
    for number in range(3):
        await patron.send({"type": "send", "client_msg_id": f"ok-{number}", "body": "hi"})
        await patron.recv_until("ack", client_msg_id=f"ok-{number}")
    await patron.drain()

    for number in range(consumers.MAX_RATE_LIMITED):
        await patron.send({"type": "send", "client_msg_id": f"flood-{number}", "body": "hi"})
        assert (await patron.recv())["code"] == "rate_limited"

    assert await patron.close_code() == 4429
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 5


async def test_patron_typing_reaches_the_desk_and_is_not_echoed(
    cast: Cast, sockets: Sockets
) -> None:
    _started, patron, desk = await accepted_chat(sockets, cast)

    await patron.send({"type": "typing", "active": True})
    typing = await desk.recv_until("typing")

    assert typing["from"] == "patron"
    assert typing["active"] is True
    assert await patron.nothing()


async def test_librarian_typing_reaches_the_patron_and_is_not_echoed(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send({"type": "typing", "conversation": started.public_id, "active": False})
    typing = await patron.recv_until("typing")

    assert typing["from"] == "librarian"
    assert typing["active"] is False
    assert await desk.nothing()


async def test_patron_read_mark_reaches_the_desk(cast: Cast, sockets: Sockets) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await patron.send({"type": "read", "seq": 3})
    read = await desk.recv_until("read")

    assert read["from"] == "patron"
    assert read["seq"] == 3
    assert (await db(fresh)(started)).patron_last_read_seq == 3
    assert await patron.nothing()


async def test_librarian_read_mark_reaches_the_patron(cast: Cast, sockets: Sockets) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send({"type": "read", "conversation": started.public_id, "seq": 3})
    read = await patron.recv_until("read")

    assert read["from"] == "librarian"
    assert read["seq"] == 3
    participant = await db(Participant.objects.get)(conversation_id=started.pk, user=cast.librarian)
    assert participant.last_read_seq == 3


async def test_desk_can_tell_which_conversation_a_typing_or_read_frame_is_about(
    cast: Cast, sockets: Sockets
) -> None:
    # A desk shows several conversations side by side: a live frame without the conversation's
    # id cannot be put next to the right one.
    started, patron, desk = await accepted_chat(sockets, cast)

    await patron.send({"type": "typing", "active": True})
    typing = await desk.recv_until("typing")
    await patron.send({"type": "read", "seq": 3})
    read = await desk.recv_until("read")

    assert typing.get("conversation") == started.public_id
    assert read.get("conversation") == started.public_id


async def test_patron_end_while_queued_abandons_the_conversation(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    await patron.send({"type": "end"})
    status = await patron.recv_until("status")

    assert status["status"] == "abandoned"
    assert status["seq"] == 3
    conversation = await db(fresh)(started)
    assert conversation.status == Status.ABANDONED
    assert conversation.closed_at is not None


async def test_patron_end_while_active_closes_the_conversation(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await patron.send({"type": "end"})
    for socket in (patron, desk):
        status = await socket.recv_until("status")
        assert status["status"] == "closed"
    assert (await db(fresh)(started)).status == Status.CLOSED


async def test_patron_writing_after_the_librarian_closed_gets_error_closed(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    await desk.send({"type": "close", "conversation": started.public_id})
    await patron.recv_until("status", status="closed")

    await patron.send({"type": "send", "client_msg_id": "too-late", "body": "One more thing"})
    error = await patron.recv_until("error")

    assert error["code"] == "closed"
    assert error["client_msg_id"] == "too-late"
    await patron.send({"type": "ping"})
    assert await patron.recv_until("pong")


async def test_patron_who_disconnects_is_recorded_as_gone(cast: Cast, sockets: Sockets) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    assert (await db(fresh)(started)).patron_connected

    await patron.disconnect()

    assert not (await db(fresh)(started)).patron_connected


async def test_patron_repeating_hello_gets_an_error_and_stays_open(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    await patron.send({"type": "hello", "token": started.token, "last_seq": 0})

    assert (await patron.recv())["type"] == "error"
    await patron.send({"type": "ping"})
    assert await patron.recv() == {"type": "pong"}


# --- patron: delivery exactly once ----------


async def test_patron_replays_from_the_database_when_a_notification_skips_ahead(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    assert seqs(await patron.drain()) == [1, 2]

    def store_two() -> list[Event]:
        return [
            services.message_send(
                conversation_id=started.pk,
                sender=Sender.PATRON,
                author=None,
                client_msg_id=f"lost-{number}",
                body=f"lost doorbell {number}",
            )[0]
            for number in (3, 4)
        ]

    with mock.patch("chat.doorbell.ring_sync"):  # both doorbells are lost
        stored = await db(store_two)()
    assert [event.seq for event in stored] == [3, 4]
    fabricated = {
        "type": "message",
        "conversation": started.public_id,
        "seq": 4,
        "ts": timezone.now().isoformat(),
        "id": "fabricated",
        "client_msg_id": None,
        "from": "patron",
        "name": "Nobody",
        "body": "not what the database holds",
    }
    topic = started.public_id
    await doorbell.ring(topic, {"type": "chat.event", "event": fabricated, "staff_only": False})
    replayed = [await patron.recv(), await patron.recv()]
    # The lost doorbells turn up late, and the fabricated one again: all are stale now.
    for event in stored:
        frame = events.event_frame(event, started.public_id)
        await doorbell.ring(topic, {"type": "chat.event", "event": frame, "staff_only": False})
    await doorbell.ring(topic, {"type": "chat.event", "event": fabricated, "staff_only": False})
    late = await patron.drain()

    assert [(frame["seq"], frame["body"]) for frame in replayed] == [
        (3, "lost doorbell 3"),
        (4, "lost doorbell 4"),
    ]
    assert [frame["id"] for frame in replayed] == [event.public_id for event in stored]
    assert late == []


async def test_a_lost_last_doorbell_is_repaired_by_the_next_heartbeat(
    cast: Cast, sockets: Sockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No later event reveals a gap when the last notification of a burst is lost.
    monkeypatch.setattr(heartbeat, "HEARTBEAT_S", 0.2)
    monkeypatch.setattr(heartbeat, "CATCH_UP_GRACE_S", 0.05)
    started = await db(start_accepted)(cast.queue, cast.librarian)
    patron, _welcome = await sockets.patron(started)
    desk, _desk_welcome = await sockets.desk(cast.librarian)
    await desk.send({"type": "subscribe", "conversation": started.public_id, "last_seq": 3})
    await patron.drain()
    await desk.drain()

    def store() -> Event:
        return services.message_send(
            conversation_id=started.pk,
            sender=Sender.PATRON,
            author=None,
            client_msg_id="lost-last",
            body="the doorbell was lost",
        )[0]

    with mock.patch("chat.doorbell.ring_sync"):
        stored = await db(store)()

    for side in (patron, desk):
        frame = await side.recv_until("message")
        assert (frame["seq"], frame["body"]) == (stored.seq, "the doorbell was lost")
        assert not of_type(await side.drain(), "message")


# --- desk: handshake and welcome ----------


async def test_desk_without_a_session_is_closed_4401(cast: Cast, sockets: Sockets) -> None:
    desk = await sockets.desk_socket(None)

    assert await desk.close_code() == 4401


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://www.demo-library.org", "null"],
    ids=["foreign", "a-librarys-embedding-origin", "null"],
)
async def test_desk_from_an_origin_other_than_reflibs_own_is_closed_4403(
    cast: Cast, sockets: Sockets, origin: str
) -> None:
    desk = await sockets.desk_socket(cast.librarian, origin=origin)

    assert await desk.close_code() == 4403


async def test_desk_of_a_user_without_membership_is_closed_4401(
    cast: Cast, sockets: Sockets
) -> None:
    stranger = await db(User.objects.create_user)("stranger")

    desk = await sockets.desk_socket(stranger)

    assert await desk.close_code() == 4401


async def test_desk_welcome_lists_the_librarians_open_conversations_and_the_queue(
    cast: Cast, sockets: Sockets
) -> None:
    await db(go_available)(cast.librarian)
    mine = await db(start_accepted)(cast.queue, cast.librarian)
    ended = await db(start_accepted)(cast.queue, cast.librarian)
    await db(services.conversation_end_by_patron)(conversation_id=ended.pk)
    await db(start_accepted)(cast.queue, cast.manager)
    waiting = await db(start)(
        cast.queue, "Is the library open on Sunday?", page_url="https://www.demo-library.org/hours"
    )

    _desk, welcome = await sockets.desk(cast.librarian)

    assert welcome["user"] == "Lena"
    assert welcome["presence"] == "available"
    assert welcome["conversations"] == [{"id": mine.public_id, "status": "active", "last_seq": 3}]
    (item,) = welcome["queue"]
    assert item["conversation"] == waiting.public_id
    assert item["library"] == "demo"
    assert item["queue"] == "demo/general"
    assert item["question"] == "Is the library open on Sunday?"
    assert item["name"] == "Pat Patron"
    assert item["page_url"] == "https://www.demo-library.org/hours"
    assert isinstance(item["waiting_s"], int)
    assert 0 <= item["waiting_s"] < 60


# --- desk: frames ----------


async def test_desk_presence_frame_sets_presence_and_tells_waiting_patrons_their_wait(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    assert of_type(await patron.drain(), "queue")[-1]["estimated_wait_s"] is None
    desk, welcome = await sockets.desk(cast.librarian)
    assert welcome["presence"] == "offline"

    await desk.send({"type": "presence", "state": "available"})
    queue = await desk.recv_until("queue")
    position = await patron.recv_until("queue")

    presence = await db(Presence.objects.get)(user=cast.librarian)
    assert presence.state == PresenceState.AVAILABLE
    assert [item["conversation"] for item in queue["items"]] == [started.public_id]
    assert position["position"] == 1
    assert isinstance(position["estimated_wait_s"], int)

    await desk.send({"type": "presence", "state": "asleep"})
    assert (await desk.recv_until("error"))["code"] == "invalid"
    await desk.send({"type": "presence", "state": "away"})
    await desk.send({"type": "ping"})
    await desk.recv_until("pong")
    assert (await db(Presence.objects.get)(user=cast.librarian)).state == PresenceState.AWAY


async def test_accept_sends_accepted_to_the_acceptor_and_the_active_status_to_everyone(
    cast: Cast, sockets: Sockets
) -> None:
    await db(go_available)(cast.librarian)
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()
    desk, _desk_welcome = await sockets.desk(cast.librarian)
    await desk.drain()

    await desk.send({"type": "accept", "conversation": started.public_id})
    accepted = await desk.recv()
    desk_frames = await desk.drain()
    patron_frames = await patron.drain()

    assert accepted == {"type": "accepted", "conversation": started.public_id}
    assert seqs(desk_frames) == [1, 2, 3]
    (active,) = stored_events(patron_frames)
    assert active["type"] == "status"
    assert active["status"] == "active"
    assert active["librarian"] == "Lena"
    assert stored_events(desk_frames)[-1] == active | {"mine": True}
    conversation = await db(fresh)(started)
    assert conversation.status == Status.ACTIVE
    assert conversation.librarian_id == cast.librarian.pk
    assert conversation.accepted_at is not None


async def test_second_librarian_accepting_gets_conflict(cast: Cast, sockets: Sockets) -> None:
    started, _patron, _desk = await accepted_chat(sockets, cast)
    other_desk, _welcome = await sockets.desk(cast.manager)

    await other_desk.send({"type": "accept", "conversation": started.public_id})
    error = await other_desk.recv_until("error")

    assert error["code"] == "conflict"
    assert error["conversation"] == started.public_id
    assert (await db(fresh)(started)).librarian_id == cast.librarian.pk


async def test_subscribe_with_last_seq_replays_only_newer_events_then_live_ones(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, _desk = await accepted_chat(sockets, cast)
    colleague, _welcome = await sockets.desk(cast.manager)
    await colleague.drain()

    await colleague.send({"type": "subscribe", "conversation": started.public_id, "last_seq": 2})
    replayed = await colleague.drain()
    await patron.send({"type": "send", "client_msg_id": "p1", "body": "Thanks!"})
    live = await colleague.recv_until("message")

    assert seqs(replayed) == [3]
    assert live["seq"] == 4
    assert live["body"] == "Thanks!"


async def test_accepting_a_conversation_already_subscribed_sends_no_event_twice(
    cast: Cast, sockets: Sockets
) -> None:
    await db(go_available)(cast.librarian)
    started = await db(start)(cast.queue)
    desk, _welcome = await sockets.desk(cast.librarian)
    await desk.drain()
    await desk.send({"type": "subscribe", "conversation": started.public_id, "last_seq": 0})
    subscribed = await desk.drain()

    await desk.send({"type": "accept", "conversation": started.public_id})
    accepted = await desk.drain()

    assert seqs(subscribed) == [1, 2]
    assert seqs(accepted) == [3]


async def test_subscribing_to_an_unknown_conversation_is_not_found(
    cast: Cast, sockets: Sockets
) -> None:
    desk, _welcome = await sockets.desk(cast.librarian)

    await desk.send({"type": "subscribe", "conversation": "no-such-chat", "last_seq": 0})

    assert (await desk.recv_until("error"))["code"] == "not_found"


async def test_librarian_send_is_acknowledged_once_and_reaches_the_patron(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    frame = {
        "type": "send",
        "conversation": started.public_id,
        "client_msg_id": "d-1",
        "body": "Yes, two copies.",
    }

    await desk.send(frame)
    ack = await desk.recv_until("ack")
    await desk.send(frame)
    again = await desk.recv_until("ack")
    patron_frames = await patron.drain()

    assert ack == again
    assert ack["seq"] == 4
    (message,) = stored_events(patron_frames)
    assert message["type"] == "message"
    assert message["seq"] == 4
    assert message["from"] == "librarian"
    assert message["name"] == "Lena"
    assert message["body"] == "Yes, two copies."
    assert message["id"] == ack["id"]
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 4


async def test_librarian_who_has_not_accepted_cannot_send(cast: Cast, sockets: Sockets) -> None:
    started, _patron, _desk = await accepted_chat(sockets, cast)
    colleague, _welcome = await sockets.desk(cast.manager)

    await colleague.send(
        {"type": "send", "conversation": started.public_id, "client_msg_id": "c1", "body": "Hi"}
    )

    error = await colleague.recv_until("error")
    assert error["code"] == "forbidden"
    assert error["client_msg_id"] == "c1"


async def test_note_reaches_the_desk_and_never_the_patron(cast: Cast, sockets: Sockets) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send(
        {
            "type": "note",
            "conversation": started.public_id,
            "client_msg_id": "n-1",
            "body": "Patron sounds like a student; check course reserves.",
        }
    )
    ack = await desk.recv_until("ack")
    note = await desk.recv_until("note")
    assert await patron.nothing()
    await desk.send(
        {"type": "send", "conversation": started.public_id, "client_msg_id": "d-2", "body": "Hi"}
    )
    after = await patron.recv_until("message")
    fresh_patron, _welcome = await sockets.patron(started, last_seq=0)
    replayed = await fresh_patron.drain()

    assert ack["seq"] == 4
    assert note["seq"] == 4
    assert note["id"] == ack["id"]
    assert note["name"] == "Lena"
    assert note["body"] == "Patron sounds like a student; check course reserves."
    assert (await db(Event.objects.get)(conversation_id=started.pk, seq=4)).staff_only
    assert after["seq"] == 5
    assert seqs(replayed) == [1, 2, 3, 5]
    assert not of_type(replayed, "note")
    assert "course reserves" not in json.dumps(replayed)


async def test_transfer_to_a_colleague_assigns_the_conversation_to_their_desk(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    colleague, _welcome = await sockets.desk(cast.manager)
    await colleague.drain()

    await desk.send(
        {
            "type": "transfer",
            "conversation": started.public_id,
            "to_user": cast.manager.username,
            "note": "Needs the local history collection.",
        }
    )
    assigned = await colleague.recv()
    colleague_frames = await colleague.drain()
    patron_frames = await patron.drain()

    assert assigned["type"] == "assigned"
    assert assigned["conversation"] == started.public_id
    assert seqs(colleague_frames) == [1, 2, 3, 4, 5]
    note, status = stored_events(colleague_frames)[-2:]
    assert note["type"] == "note"
    assert note["body"] == "Needs the local history collection."
    assert status["type"] == "status"
    assert status["status"] == "active"
    assert status["librarian"] == "Mara"
    assert "Mara" in status["reason"]
    assert status.pop("mine") is True
    assert stored_events(patron_frames) == [status]
    conversation = await db(fresh)(started)
    assert conversation.librarian_id == cast.manager.pk
    assert conversation.status == Status.ACTIVE


def statuses(frames: list[Frame]) -> list[Frame]:
    """The status events among ``frames``, without their times."""
    return [
        {key: value for key, value in frame.items() if key != "ts"}
        for frame in of_type(frames, "status")
    ]


async def test_status_events_tell_each_desk_by_user_id_not_by_name_whose_conversation_it_is(
    cast: Cast, sockets: Sockets
) -> None:
    namesake = await db(staff_upsert)(
        username="lena.b", library=cast.library, role=Role.LIBRARIAN, display_name="Lena"
    )
    await db(go_available)(cast.librarian)
    started = await db(start)(cast.queue)
    chat = started.public_id
    patron, _welcome = await sockets.patron(started)
    desk, _desk_welcome = await sockets.desk(cast.librarian)
    other, _other_welcome = await sockets.desk(namesake)
    await other.send({"type": "subscribe", "conversation": chat, "last_seq": 0})
    await asyncio.gather(patron.drain(), desk.drain(), other.drain())

    await desk.send({"type": "accept", "conversation": chat})
    accepted = await desk.drain()
    await desk.send({"type": "transfer", "conversation": chat, "to_user": "lena.b"})
    transferred = await desk.drain()
    other_frames = await other.drain()
    patron_frames = await patron.drain()
    # A desk that comes back replays the log: each status event as it was when stored.
    desk_again, _again = await sockets.desk(cast.librarian)
    await desk_again.send({"type": "subscribe", "conversation": chat, "last_seq": 2})
    replayed = await desk_again.drain()

    active = {"type": "status", "conversation": chat, "status": "active", "librarian": "Lena"}
    handed = active | {"seq": 4, "reason": "transferred to Lena"}
    assert statuses(accepted) == [
        {"type": "status", "conversation": chat, "seq": 2, "status": "queued", "librarian": None}
        | {"mine": False},
        active | {"seq": 3, "mine": True},
    ]
    assert statuses(transferred) == [handed | {"mine": False}]
    assert statuses(other_frames) == [active | {"seq": 3, "mine": False}, handed | {"mine": True}]
    assert statuses(replayed) == [active | {"seq": 3, "mine": True}, handed | {"mine": False}]
    assert statuses(patron_frames) == [active | {"seq": 3}, handed]


async def test_transfer_to_a_queue_queues_the_conversation_again(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send(
        {"type": "transfer", "conversation": started.public_id, "to_queue": "demo/general"}
    )
    status = await patron.recv_until("status")
    queue = await desk.recv_until("queue")

    assert status["status"] == "queued"
    assert status["librarian"] is None
    assert status["reason"]
    assert [item["conversation"] for item in queue["items"]] == [started.public_id]
    conversation = await db(fresh)(started)
    assert conversation.status == Status.QUEUED
    assert conversation.librarian_id is None


async def test_transfer_to_an_unknown_colleague_is_not_found(cast: Cast, sockets: Sockets) -> None:
    started, _patron, desk = await accepted_chat(sockets, cast)

    await desk.send(
        {"type": "transfer", "conversation": started.public_id, "to_user": "nobody-here"}
    )

    assert (await desk.recv_until("error"))["code"] == "not_found"
    assert (await db(fresh)(started)).librarian_id == cast.librarian.pk


async def test_close_with_read_level_and_tags_closes_and_stores_them(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send(
        {
            "type": "close",
            "conversation": started.public_id,
            "read_level": 3,
            "tags": ["Catalogue ", "opening  hours"],
        }
    )
    for socket in (patron, desk):
        status = await socket.recv_until("status")
        assert status["status"] == "closed"

    conversation = await db(fresh)(started)
    assert conversation.status == Status.CLOSED
    assert conversation.closed_at is not None
    assert conversation.read_level == 3
    assert conversation.tags == ["catalogue", "opening hours"]


async def test_close_with_a_bad_read_level_or_tags_is_invalid(cast: Cast, sockets: Sockets) -> None:
    started, _patron, desk = await accepted_chat(sockets, cast)

    bad: list[dict[str, Any]] = [
        {"read_level": 7},
        {"read_level": 0},
        {"read_level": "3"},
        {"tags": "hours"},
        {"tags": [1]},
        {"tags": ["x" * 51]},
    ]
    for extra in bad:
        await desk.send({"type": "close", "conversation": started.public_id, **extra})
        error = await desk.recv_until("error")
        assert error["code"] == "invalid", extra

    assert (await db(fresh)(started)).status == Status.ACTIVE


async def test_checkin_reaches_the_patron_and_the_answer_is_stored_and_shown(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send({"type": "checkin", "conversation": started.public_id})
    checkin = await patron.recv_until("checkin")
    await patron.send({"type": "checkin_answer", "id": checkin["id"], "answer": "partly"})
    answer = await desk.recv_until("checkin_answer")
    await patron.send({"type": "checkin_answer", "id": checkin["id"], "answer": "yes"})
    twice = await patron.recv_until("error")

    assert checkin["seq"] == 4
    assert checkin["from"] == "librarian"
    assert checkin["name"] == "Lena"
    assert checkin["body"]
    assert answer["seq"] == 5
    assert answer["id"] == checkin["id"]
    assert answer["answer"] == "partly"
    stored = await db(Event.objects.get)(conversation_id=started.pk, seq=5)
    assert stored.kind == EventKind.CHECKIN_ANSWER
    assert stored.data["answer"] == "partly"
    assert twice["code"] == "conflict"
    assert await db(Event.objects.filter(conversation_id=started.pk).count)() == 5


async def test_checkin_answer_outside_yes_partly_no_is_invalid(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)
    await desk.send({"type": "checkin", "conversation": started.public_id})
    checkin = await patron.recv_until("checkin")

    await patron.send({"type": "checkin_answer", "id": checkin["id"], "answer": "maybe"})

    assert (await patron.recv_until("error"))["code"] == "invalid"


async def test_block_ends_the_conversation_and_refuses_the_patrons_address(
    cast: Cast, sockets: Sockets
) -> None:
    started, patron, desk = await accepted_chat(sockets, cast)

    await desk.send(
        {"type": "block", "conversation": started.public_id, "hours": 2, "reason": "abuse"}
    )
    status = await patron.recv_until("status")

    assert status["status"] == "closed"
    assert (await db(fresh)(started)).status == Status.CLOSED
    with pytest.raises(ChatError) as refused:
        await db(services.check_patron_not_blocked)(library=cast.library, ip=PATRON_IP)
    assert refused.value.code == "forbidden"
    with pytest.raises(ChatError):
        await db(services.check_patron_not_blocked)(
            library=cast.library, token_hash=hash_token(started.token), ip=None
        )
    await db(services.check_patron_not_blocked)(library=cast.other_library, ip=PATRON_IP)


async def test_desk_queue_frame_is_pushed_when_a_patron_arrives_and_when_one_is_accepted(
    cast: Cast, sockets: Sockets
) -> None:
    await db(go_available)(cast.librarian)
    desk, welcome = await sockets.desk(cast.librarian)
    assert welcome["queue"] == []

    started = await db(start)(cast.queue, "Where are the toilets?")
    arrived = await desk.recv_until("queue")
    colleague, _welcome = await sockets.desk(cast.manager)
    await colleague.send({"type": "accept", "conversation": started.public_id})
    left = await desk.recv_until("queue")

    (item,) = arrived["items"]
    assert item["conversation"] == started.public_id
    assert item["question"] == "Where are the toilets?"
    assert left["items"] == []


async def test_desks_of_one_process_share_one_read_of_a_changed_queue(
    cast: Cast, sockets: Sockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[list[int]] = []
    desk_queue = consumers.socket_actions.desk_queue

    def counted(*, library_ids: list[int]) -> frames.DeskQueue:
        reads.append(library_ids)
        return desk_queue(library_ids=library_ids)

    monkeypatch.setattr(consumers.socket_actions, "desk_queue", counted)
    librarian_desk, _welcome = await sockets.desk(cast.librarian)
    manager_desk, _welcome = await sockets.desk(cast.manager)
    other_desk, _welcome = await sockets.desk(cast.other_librarian)
    reads.clear()  # the welcomes read it too

    started = await db(start)(cast.queue, "Is the library open on Sunday?")
    heard = [await librarian_desk.recv_until("queue"), await manager_desk.recv_until("queue")]

    assert [frame["items"][0]["conversation"] for frame in heard] == [started.public_id] * 2
    assert reads == [[cast.library.pk]]
    assert await other_desk.nothing()


async def test_another_librarys_desk_never_sees_demo_conversations(
    cast: Cast, sockets: Sockets
) -> None:
    own_desk, _welcome = await sockets.desk(cast.librarian)
    other_desk, other_welcome = await sockets.desk(cast.other_librarian)
    assert other_welcome["queue"] == []

    started = await db(start)(cast.queue, "A private question")
    await own_desk.recv_until("queue")  # the demo desk heard it, so the other would have too
    assert await other_desk.nothing()
    await other_desk.send({"type": "subscribe", "conversation": started.public_id, "last_seq": 0})
    subscribe_error = await other_desk.recv()
    await other_desk.send({"type": "accept", "conversation": started.public_id})
    accept_error = await other_desk.recv()

    assert subscribe_error["type"] == accept_error["type"] == "error"
    assert subscribe_error["code"] == accept_error["code"] == "not_found"
    assert "A private question" not in json.dumps([subscribe_error, accept_error])
    assert await other_desk.nothing()
    assert (await db(fresh)(started)).status == Status.QUEUED


async def test_rolled_over_conversation_becomes_visible_to_the_partner_librarian_only(
    cast: Cast, sockets: Sockets
) -> None:
    await db(rollover_partnership_agree)(source=cast.queue, partner=cast.other_queue)
    await db(go_available)(cast.other_librarian)
    rolling = await db(start)(cast.queue, "Rolls over")
    staying = await db(start)(cast.queue, "Stays at home")
    patron, _welcome = await sockets.patron(rolling)
    await patron.drain()
    partner_desk, welcome = await sockets.desk(cast.other_librarian)
    assert welcome["queue"] == []
    long_ago = timezone.now() - timedelta(seconds=cast.queue.unanswered_limit_s + 5)
    await db(Conversation.objects.filter(pk=rolling.pk).update)(queued_since=long_ago)

    result = await db(services.sweep)()
    queue = await partner_desk.recv_until("queue")
    rolled = await patron.recv_until("status")
    await partner_desk.send({"type": "subscribe", "conversation": rolling.public_id, "last_seq": 0})
    visible = await partner_desk.drain()
    await partner_desk.send({"type": "subscribe", "conversation": staying.public_id, "last_seq": 0})
    hidden = await partner_desk.recv()
    await partner_desk.send({"type": "accept", "conversation": rolling.public_id})
    accepted = await partner_desk.recv_until("accepted")

    assert result.rolled_over == 1
    assert [item["conversation"] for item in queue["items"]] == [rolling.public_id]
    assert queue["items"][0]["queue"] == "other/general"
    assert rolled["status"] == "queued"
    assert "rolled over" in rolled["reason"]
    assert seqs(visible) == [1, 2, 3]
    assert hidden["type"] == "error"
    assert hidden["code"] == "not_found"
    assert accepted["conversation"] == rolling.public_id
    assert (await db(fresh)(rolling)).librarian_id == cast.other_librarian.pk


async def test_accepting_a_conversation_the_desk_already_follows_sends_no_event_twice(
    cast: Cast, sockets: Sockets
) -> None:
    # The consumers promise each event exactly once per connection; a librarian often reads a
    # waiting patron's conversation before accepting it.
    await db(go_available)(cast.librarian)
    started = await db(start)(cast.queue)
    desk, _welcome = await sockets.desk(cast.librarian)
    await desk.send({"type": "subscribe", "conversation": started.public_id, "last_seq": 0})
    before = await desk.drain()

    await desk.send({"type": "accept", "conversation": started.public_id})
    await desk.recv_until("accepted")
    after = await desk.drain()

    assert seqs(before) == [1, 2]
    assert seqs(after) == [3]


async def test_sockets_leave_their_groups_when_they_disconnect(
    cast: Cast, sockets: Sockets
) -> None:
    _started, patron, desk = await accepted_chat(sockets, cast)
    assert await group_memberships() > 0

    await patron.disconnect()
    await desk.disconnect()

    assert await group_memberships() == 0


async def test_a_new_staff_member_can_open_a_desk(cast: Cast, sockets: Sockets) -> None:
    newcomer = await db(staff_upsert)(
        username="nina", library=cast.library, role=Role.LIBRARIAN, display_name="Nina"
    )

    _desk, welcome = await sockets.desk(newcomer)

    assert welcome["user"] == "Nina"
    assert welcome["conversations"] == []
