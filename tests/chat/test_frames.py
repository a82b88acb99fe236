"""Every frame the chat publishes or sends has the shape chat.frames gives it (as Zulip's event
schema tests do): a conversation is run through every service that publishes, over real
sockets, and each channel-layer notice and each frame a socket receives is checked against its
TypedDict, exact keys and value types."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from chat import doorbell, events, frames, services
from chat.models import Sender
from tests.chat.conftest import Frame, Socket, Sockets, go_available, start
from tests.chat.frame_schema import problems
from tests.conftest import Cast

pytestmark = [
    pytest.mark.django_db(transaction=True),
]

db = database_sync_to_async

OFFER_SDP = (
    "v=0\r\no=- 4611 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
)
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}
NOTICES: dict[str, Any] = {
    "chat.event": events.EventNotice,
    "chat.live": events.LiveNotice,
    "chat.queue_changed": events.QueueNotice,
    "chat.positions": events.PositionsNotice,
    "chat.user_conversation": events.UserNotice,
}


def notice_problems(message: dict[str, Any]) -> list[str]:
    """A channel-layer notice, and the frame it carries checked against that frame's type."""
    kind = message["type"]
    found = problems(message, NOTICES[kind], kind)
    if kind == "chat.event":
        found += problems(message["event"], frames.STORED[message["event"]["type"]], kind)
    elif kind == "chat.live":
        found += problems(message["frame"], frames.LIVE[message["frame"]["type"]], kind)
    return found


def frame_problems(frame: Frame, *, desk: bool) -> list[str]:
    replies = frames.DESK_REPLIES if desk else frames.PATRON_REPLIES
    schemas = {**frames.STORED, **frames.LIVE, **replies}
    if frame["type"] not in schemas:
        return [f"{frame['type']!r} is no frame the {'desk' if desk else 'patron'} receives"]
    return problems(frame, schemas[frame["type"]], frame["type"])


# --- the checker itself ----------


def test_the_checker_refuses_missing_unknown_and_mistyped_keys() -> None:
    ack = {"type": "ack", "client_msg_id": "c1", "seq": 3, "id": "e1"}
    assert problems(ack, frames.Ack) == []
    assert problems({"type": "ack", "client_msg_id": "c1", "seq": 3}, frames.Ack) == [
        "frame: Ack misses ['id']"
    ]
    assert problems({**ack, "extra": 1}, frames.Ack) == ["frame: Ack has no ['extra']"]
    assert problems({**ack, "seq": True}, frames.Ack) == ["frame.seq: True is not a whole number"]
    assert problems({**ack, "type": "acknowledged"}, frames.Ack) == [
        "frame.type: 'acknowledged' is not one of ('ack',)"
    ]


def test_the_checker_knows_optional_keys_unions_and_nested_types() -> None:
    status = {
        "type": "status",
        "conversation": "c",
        "seq": 2,
        "ts": "2026-01-05T10:00:00+00:00",
        "status": "queued",
        "librarian": None,
    }
    assert problems(status, frames.Status) == []
    assert problems({**status, "reason": "transferred to Mara"}, frames.Status) == []
    assert problems({**status, "librarian": 7}, frames.Status) == [
        "frame.librarian: 7 is none of (<class 'str'>, <class 'NoneType'>)"
    ]
    candidate = {
        "type": "share_candidate",
        "conversation": "c",
        "from": "patron",
        "share": "s1",
        "candidate": {**CANDIDATE, "sdpMid": 0},
    }
    assert problems(candidate, frames.ShareCandidate) == [
        "frame.candidate.sdpMid: 0 is none of (<class 'str'>, <class 'NoneType'>)"
    ]


# --- every frame of a whole conversation ----------


class RecordingLayer:
    """The channel layer as chat.events sees it: every notice is kept, then sent on (the
    doorbell's notices are kept as this process's station hands them out)."""

    def __init__(self, layer: Any, sent: list[dict[str, Any]]) -> None:
        self.layer = layer
        self.sent = sent

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await self.layer.group_send(group, message)


async def test_every_published_and_received_frame_matches_its_type(
    cast: Cast, sockets: Sockets, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.clear()  # share states and rate-limit counters
    published: list[dict[str, Any]] = []
    real_layer = events.get_channel_layer
    monkeypatch.setattr(
        events, "get_channel_layer", lambda: RecordingLayer(real_layer(), published)
    )
    deliver = doorbell.Station.deliver

    def recording_deliver(self: doorbell.Station, topic: str, notice: dict[str, Any]) -> None:
        published.append(notice)
        deliver(self, topic, notice)

    monkeypatch.setattr(doorbell.Station, "deliver", recording_deliver)
    received: list[tuple[bool, Frame]] = []
    recv = Socket.recv

    async def recording_recv(self: Socket) -> Frame:
        frame = await recv(self)
        received.append((self.communicator.scope["path"].startswith("/ws/v1/desk/"), frame))
        return frame

    monkeypatch.setattr(Socket, "recv", recording_recv)

    await db(go_available)(cast.librarian)
    lena, _welcome = await sockets.desk(cast.librarian)
    mara, _welcome = await sockets.desk(cast.manager)
    started = await db(start)(cast.queue)
    patron, _welcome = await sockets.patron(started)
    await patron.recv_until("queue")
    await lena.recv_until("queue")
    conversation = started.public_id

    await lena.send({"type": "accept", "conversation": conversation})
    await lena.recv_until("accepted")
    await patron.recv_until("status", status="active")
    await patron.send({"type": "send", "client_msg_id": "p1", "body": "Hello"})
    await patron.recv_until("ack")
    await lena.send(
        {"type": "send", "conversation": conversation, "client_msg_id": "l1", "body": "Hi"}
    )
    await lena.recv_until("ack")
    await lena.send(
        {"type": "note", "conversation": conversation, "client_msg_id": "n1", "body": "Regular"}
    )
    await lena.recv_until("note")
    await patron.send({"type": "typing", "active": True})
    await lena.recv_until("typing")
    await lena.send({"type": "typing", "conversation": conversation, "active": False})
    await patron.recv_until("typing")
    await patron.send({"type": "read", "seq": 5})
    await lena.recv_until("read")
    await lena.send({"type": "read", "conversation": conversation, "seq": 5})
    await patron.recv_until("read")
    await db(services.file_attach)(
        conversation_id=started.pk,
        sender=Sender.PATRON,
        author=None,
        upload=SimpleUploadedFile("map.pdf", b"%PDF-1.4 map"),
        content_type="application/pdf",
        filename="map.pdf",
    )
    await lena.recv_until("file")
    await lena.send({"type": "checkin", "conversation": conversation})
    checkin = await patron.recv_until("checkin")
    await patron.send({"type": "checkin_answer", "id": checkin["id"], "answer": "yes"})
    await lena.recv_until("checkin_answer")
    await patron.send({"type": "ping"})
    await patron.recv_until("pong")
    await lena.send({"type": "ping"})
    await lena.recv_until("pong")
    await patron.send({"type": "send", "client_msg_id": "p2", "body": ""})
    await patron.recv_until("error")
    await lena.send({"type": "read", "conversation": "unknown", "seq": 1})
    await lena.recv_until("error")

    await patron.send({"type": "share_request", "share": "s1"})
    await lena.recv_until("share_request")
    await lena.send(
        {"type": "share_reply", "conversation": conversation, "share": "s1", "accept": True}
    )
    await patron.recv_until("share_reply")
    await patron.send({"type": "share_offer", "share": "s1", "sdp": OFFER_SDP})
    await lena.recv_until("share_offer")
    await lena.send(
        {"type": "share_answer", "conversation": conversation, "share": "s1", "sdp": OFFER_SDP}
    )
    await patron.recv_until("share_answer")
    await patron.send({"type": "share_candidate", "share": "s1", "candidate": CANDIDATE})
    await lena.recv_until("share_candidate")

    # A transfer mid-share: the share ends (noted, share_stop to the patron), Mara is assigned.
    await lena.send(
        {
            "type": "transfer",
            "conversation": conversation,
            "to_user": cast.manager.username,
            "note": "Yours",
        }
    )
    await mara.recv_until("assigned")
    await patron.recv_until("share_stop")
    await patron.recv_until("status", reason="transferred to Mara")
    await mara.send({"type": "close", "conversation": conversation, "read_level": 2})
    await patron.recv_until("status", status="closed")

    waiting = await db(start)(cast.queue, "Is the library open on Sunday?")
    second, _welcome = await sockets.patron(waiting)
    await second.recv_until("queue")
    await db(services.conversation_end_by_patron)(conversation_id=waiting.pk)
    await second.recv_until("status", status="abandoned")
    await asyncio.gather(lena.drain(), mara.drain(), patron.drain(), second.drain())

    kinds = {message["type"] for message in published}
    stored = {m["event"]["type"] for m in published if m["type"] == "chat.event"}
    live = {m["frame"]["type"] for m in published if m["type"] == "chat.live"}
    assert kinds == set(NOTICES)
    assert stored == set(frames.STORED)
    # Positions travel as one chat.positions notice per queue change; each station makes the
    # ``queue`` frames of its own waiting patrons from it.
    assert live | {"queue"} == set(frames.LIVE)
    assert {frame["type"] for desk, frame in received if desk} >= set(frames.DESK_REPLIES)
    assert {frame["type"] for desk, frame in received if not desk} >= set(frames.PATRON_REPLIES)
    assert [p for message in published for p in notice_problems(message)] == []
    assert [p for desk, frame in received for p in frame_problems(frame, desk=desk)] == []
