"""The permission matrix of the desk socket: every conversation frame, as every actor.

Who is not staff of a library (anonymous, patrons, a former member) never gets a desk: the
handshake closes 4401. Staff of another library are answered ``not_found`` for every frame
about the demo library's conversation and hear nothing of it. The patron socket carries no
conversation id: a token opens its own conversation only (tests/chat/test_consumers.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User

from chat.models import Participant
from reflib.models import Membership, Role
from reflib.services import staff_upsert
from tests.chat.conftest import Frame, Socket, Sockets, start, start_accepted
from tests.conftest import PASSWORD, Cast

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

db = database_sync_to_async
SECRET = "Which shelf hides the confidential deed of 1887?"
STAFF = ("other_librarian", "librarian", "other_manager", "manager")
NO_DESK = ("anonymous", "other_patron", "patron", "former_member")


@dataclass
class Place:
    users: dict[str, User]
    chat: str  # active, answered by the librarian
    waiting: str  # queued


def _place(cast: Cast) -> Place:
    former = staff_upsert(
        username="fran", library=cast.library, role=Role.LIBRARIAN, password=PASSWORD
    )
    other_manager = staff_upsert(
        username="omar", library=cast.other_library, role=Role.MANAGER, password=PASSWORD
    )
    chat = start_accepted(cast.queue, cast.librarian, question=SECRET)
    Participant.objects.create(conversation_id=chat.pk, user=former)
    Membership.objects.filter(user=former).delete()
    waiting = start(cast.queue, SECRET)
    return Place(
        users={
            "other_librarian": cast.other_librarian,
            "librarian": cast.librarian,
            "other_manager": other_manager,
            "manager": cast.manager,
            "former_member": former,
        },
        chat=chat.public_id,
        waiting=waiting.public_id,
    )


@dataclass(frozen=True)
class FrameRow:
    name: str
    frame: Callable[[Place], Frame]
    expect: str  # outcome for STAFF, in order: an error code, or "ok"


def on_chat(kind: str, **fields: Any) -> Callable[[Place], Frame]:
    return lambda p: {"type": kind, "conversation": p.chat, **fields}


#                                                       o.lib      lib   o.mgr      mgr
FRAMES = [
    FrameRow("subscribe", on_chat("subscribe", last_seq=0), "not_found ok not_found ok"),
    FrameRow(
        "accept",
        lambda p: {"type": "accept", "conversation": p.waiting},
        "not_found ok not_found ok",
    ),
    FrameRow(
        "send",
        on_chat("send", client_msg_id="m1", body="hello"),
        "not_found ok not_found forbidden",
    ),
    FrameRow("note", on_chat("note", client_msg_id="n1", body="psst"), "not_found ok not_found ok"),
    FrameRow("typing", on_chat("typing", active=True), "not_found ok not_found ok"),
    FrameRow("read", on_chat("read", seq=1), "not_found ok not_found ok"),
    FrameRow(
        "transfer",
        on_chat("transfer", to_queue="other/general"),
        "not_found forbidden not_found forbidden",
    ),
    FrameRow("checkin", on_chat("checkin"), "not_found ok not_found forbidden"),
    FrameRow("close", on_chat("close", read_level=2), "not_found ok not_found forbidden"),
    FrameRow("block", on_chat("block", hours=1), "not_found ok not_found ok"),
]


async def outcome_of(desk: Socket, frame: Frame) -> tuple[str, list[Frame]]:
    await desk.send(frame)
    frames = await desk.drain(quiet=0.4)
    errors = [f for f in frames if f.get("type") == "error"]
    return (str(errors[0]["code"]) if errors else "ok"), frames


CELLS = [(row, actor) for row in FRAMES for actor in STAFF]


@pytest.mark.parametrize(
    ("row", "actor"), CELLS, ids=[f"{row.name} as {actor}" for row, actor in CELLS]
)
async def test_desk_frame_matrix(cast: Cast, sockets: Sockets, row: FrameRow, actor: str) -> None:
    place = await db(_place)(cast)
    desk, welcome = await sockets.desk(place.users[actor])
    await desk.drain()
    if row.name not in ("subscribe", "accept"):
        # Everyone first tries to follow the conversation, as a client would.
        await desk.send({"type": "subscribe", "conversation": place.chat, "last_seq": 0})
        await desk.drain(quiet=0.3)

    result, frames = await outcome_of(desk, row.frame(place))

    expected = dict(zip(STAFF, row.expect.split(), strict=True))[actor]
    assert result == expected, frames
    if actor.startswith("other_"):
        seen = [welcome, *frames]
        assert all(SECRET not in str(f) for f in seen)
        assert all(f.get("type") == "error" for f in frames if f.get("conversation"))


@pytest.mark.parametrize("actor", NO_DESK)
async def test_only_current_staff_get_a_desk(cast: Cast, sockets: Sockets, actor: str) -> None:
    place = await db(_place)(cast)
    user = place.users.get(actor)  # patrons and anonymous have no session

    desk = await sockets.desk_socket(user)

    assert await desk.close_code() == 4401
