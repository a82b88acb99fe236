"""The review's socket findings, attacked through the real ASGI application."""

from __future__ import annotations

import json

import pytest
from channels.db import database_sync_to_async
from pytest_django import Settings

from chat.models import Conversation
from reflib.models import Membership, Role
from tests.chat.conftest import Socket, Sockets, go_available, start, start_accepted
from tests.conftest import Cast
from tests.security.conftest import patron_socket_from

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

db = database_sync_to_async


async def ack_or_error(socket: Socket) -> str:
    """``ack``, or the code of the error that answered a send."""
    while True:
        frame = await socket.recv()
        if frame["type"] == "ack":
            return "ack"
        if frame["type"] == "error":
            return str(frame["code"])


async def test_a_desk_is_closed_4409_when_its_membership_ends(cast: Cast, sockets: Sockets) -> None:
    desk, _welcome = await sockets.desk(cast.librarian)

    await db(Membership.objects.filter(user=cast.librarian).delete)()

    assert await desk.close_code() == 4409


async def test_a_desk_is_closed_4409_when_its_role_changes(cast: Cast, sockets: Sockets) -> None:
    desk, _welcome = await sockets.desk(cast.librarian)
    other_desk, _ = await sockets.desk(cast.other_librarian)

    await db(Membership.objects.filter(user=cast.librarian).update)(role=Role.MANAGER)
    membership = await db(Membership.objects.get)(user=cast.librarian)
    await db(membership.save)()

    assert await desk.close_code() == 4409
    await other_desk.send({"type": "ping"})
    assert (await other_desk.recv_until("pong")) == {"type": "pong"}


async def test_a_reconnected_former_member_gets_4401_and_hears_no_more_queue(
    cast: Cast, sockets: Sockets
) -> None:
    desk, _welcome = await sockets.desk(cast.librarian)
    await db(Membership.objects.filter(user=cast.librarian).delete)()
    assert await desk.close_code() == 4409

    again = await sockets.desk_socket(cast.librarian)

    assert await again.close_code() == 4401


async def test_frames_after_a_refused_desk_handshake_raise_nothing(
    cast: Cast, sockets: Sockets
) -> None:
    refused = await sockets.desk_socket(None)
    for frame in (
        {"type": "ping"},
        {"type": "send", "conversation": "x", "client_msg_id": "1", "body": "hi"},
        {"type": "typing", "conversation": "x", "active": True},
    ):
        await refused.send(frame)

    assert await refused.close_code() == 4401
    await refused.disconnect()  # re-raises a consumer crash (the AttributeError)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "typing", "active": True},
        {"type": "read", "seq": 1},
        {"type": "ping"},
        {"type": "checkin_answer", "id": "nope", "answer": "yes"},
    ],
)
async def test_patron_frames_of_every_type_are_throttled(
    cast: Cast, sockets: Sockets, settings: Settings, frame: dict[str, object]
) -> None:
    settings.REFLIB_RATE_FRAMES = (5, 60)
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    for _ in range(5):
        await patron.send(frame)
    await patron.send(frame)

    error = await patron.recv_until("error", code="rate_limited")
    assert error["retry_after_s"] >= 1


async def test_desk_pings_are_throttled(cast: Cast, sockets: Sockets, settings: Settings) -> None:
    settings.REFLIB_RATE_FRAMES = (3, 60)
    desk, _welcome = await sockets.desk(cast.librarian)
    for _ in range(3):
        await desk.send({"type": "ping"})
        await desk.recv_until("pong")

    await desk.send({"type": "ping"})

    assert (await desk.recv_until("error"))["code"] == "rate_limited"


async def test_end_is_throttled_too(cast: Cast, sockets: Sockets, settings: Settings) -> None:
    settings.REFLIB_RATE_FRAMES = (2, 60)
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()
    await patron.send({"type": "ping"})
    await patron.send({"type": "ping"})

    await patron.send({"type": "end"})

    assert (await patron.recv_until("error"))["code"] == "rate_limited"
    assert (await db(Conversation.objects.get)(pk=started.pk)).is_open


async def test_sockets_per_token_are_capped_with_4429(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_MAX_SOCKETS_PER_TOKEN = 2
    started = await db(start)(cast.queue)
    await sockets.patron(started)
    await sockets.patron(started)

    third = await sockets.patron_socket()
    await third.send({"type": "hello", "token": started.token, "last_seq": 0})

    assert await third.close_code() == 4429


async def test_a_closed_socket_frees_its_tokens_slot(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_MAX_SOCKETS_PER_TOKEN = 1
    started = await db(start)(cast.queue)
    first, _ = await sockets.patron(started)
    await first.disconnect()

    await sockets.patron(started)


async def test_sockets_per_address_are_capped_with_4429_and_an_ipv6_64_is_one_address(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_MAX_SOCKETS_PER_ADDRESS = 2
    await patron_socket_from(sockets, "2001:db8:5:6::1")
    await patron_socket_from(sockets, "2001:db8:5:6::2")

    third = await patron_socket_from(sockets, "2001:db8:5:6::3")
    elsewhere = await patron_socket_from(sockets, "2001:db8:5:7::1")

    assert await third.close_code() == 4429
    assert await elsewhere.nothing()


async def test_messages_are_limited_per_address_across_tokens(
    cast: Cast, sockets: Sockets, settings: Settings
) -> None:
    settings.REFLIB_RATE_MESSAGES_ADDRESS = (3, 60)
    await db(go_available)(cast.librarian)
    chats = [await db(start)(cast.queue, f"Question {n}") for n in range(2)]
    replies = []
    for n, started in enumerate(chats):
        socket = await patron_socket_from(sockets, "198.51.100.77")
        await socket.send({"type": "hello", "token": started.token, "last_seq": 0})
        await socket.recv_until("welcome")
        for m in range(2):
            await socket.send({"type": "send", "client_msg_id": f"{n}-{m}", "body": "hello"})
            replies.append(await ack_or_error(socket))

    assert replies == ["ack", "ack", "ack", "rate_limited"]


async def test_a_desk_send_to_another_librarys_chat_is_not_found(
    cast: Cast, sockets: Sockets
) -> None:
    started = await db(start_accepted)(cast.queue, cast.librarian)
    desk, _welcome = await sockets.desk(cast.other_librarian)

    await desk.send(
        {"type": "send", "conversation": started.public_id, "client_msg_id": "x", "body": "hi"}
    )

    error = await desk.recv_until("error")
    assert error["code"] == "not_found"


@pytest.mark.parametrize("body", ["nul \x00 here", "lone \ud800 surrogate"])
async def test_text_a_database_cannot_hold_is_invalid_not_a_server_error(
    cast: Cast, sockets: Sockets, body: str
) -> None:
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.drain()

    await patron.send_text(json.dumps({"type": "send", "client_msg_id": "c", "body": body}))

    error = await patron.recv_until("error")
    assert error["code"] == "invalid"
    await patron.send({"type": "ping"})
    assert await patron.recv_until("pong") == {"type": "pong"}
