"""Every frame the server sends on the chat's sockets (PROTOCOL.md, docs/protocol.md), typed.

One TypedDict per frame and a builder for each frame that code puts together; the consumers,
chat.events and the services build frames only here. Frames with a ``from`` key use the
functional syntax, ``from`` being a Python keyword. ``STORED`` and ``LIVE`` name the shape of
each frame type that goes through the channel layer (a stored event, a live-only frame), so that
a test can check every published frame against its type.

No ``from __future__ import annotations`` here: the TypedDicts' required and optional keys are
read from their evaluated annotations.
"""

from typing import Any, Literal, NotRequired, TypedDict, cast

From = Literal["patron", "librarian", "system"]
Side = Literal["patron", "librarian"]
StatusName = Literal["queued", "active", "closed", "abandoned", "missed", "ticket"]
PresenceName = Literal["available", "away", "offline"]


# --- stored events (each has conversation, seq, ts) ----------

Message = TypedDict(
    "Message",
    {
        "type": Literal["message"],
        "conversation": str,
        "seq": int,
        "ts": str,
        "id": str,
        "name": str,
        "body": str,
        "client_msg_id": str | None,
        "from": From,
        # A system message's offer ("offer_ticket": the patron may leave the question).
        "action": NotRequired[str],
    },
)


class Note(TypedDict):
    type: Literal["note"]
    conversation: str
    seq: int
    ts: str
    id: str
    name: str
    body: str
    client_msg_id: str | None


File = TypedDict(
    "File",
    {
        "type": Literal["file"],
        "conversation": str,
        "seq": int,
        "ts": str,
        "id": str,
        "from": From,
        "name": str,
        "filename": str,
        "size": int,
        "content_type": str,
        "url": str,
    },
)


class Status(TypedDict):
    type: Literal["status"]
    conversation: str
    seq: int
    ts: str
    status: StatusName
    librarian: str | None
    reason: NotRequired[str]
    # A screen share's start or end (docs/protocol.md, section 13).
    sharing: NotRequired[Literal["started", "ended"]]
    sharer: NotRequired[Side]
    # Desks only: whether the librarian the event records is this desk's user.
    mine: NotRequired[bool]


Checkin = TypedDict(
    "Checkin",
    {
        "type": Literal["checkin"],
        "conversation": str,
        "seq": int,
        "ts": str,
        "id": str,
        "from": From,
        "name": str,
        "body": str,
    },
)


class CheckinAnswer(TypedDict):
    type: Literal["checkin_answer"]
    conversation: str
    seq: int
    ts: str
    # The check-in's id.
    id: str
    answer: Literal["yes", "partly", "no"]


StoredFrame = Message | Note | File | Status | Checkin | CheckinAnswer


# --- live-only frames ----------


class QueuePosition(TypedDict):
    """The waiting patron's place in the queue."""

    type: Literal["queue"]
    position: int
    estimated_wait_s: int | None


Typing = TypedDict(
    "Typing",
    {"type": Literal["typing"], "conversation": str, "from": Side, "active": bool},
)

Read = TypedDict(
    "Read",
    {"type": Literal["read"], "conversation": str, "from": Side, "seq": int},
)


class IceServer(TypedDict):
    urls: list[str]
    username: NotRequired[str]
    credential: NotRequired[str]


class Candidate(TypedDict):
    candidate: str
    sdpMid: str | None
    sdpMLineIndex: int | None
    usernameFragment: str | None


ShareRequest = TypedDict(
    "ShareRequest",
    {
        "type": Literal["share_request"],
        "conversation": str,
        "from": Side,
        "share": str,
        "name": str,
    },
)

ShareReply = TypedDict(
    "ShareReply",
    {
        "type": Literal["share_reply"],
        "conversation": str,
        "from": Side,
        "share": str,
        "accept": bool,
        "ice_servers": NotRequired[list[IceServer]],
        "ice_transport_policy": NotRequired[Literal["all", "relay"]],
    },
)

ShareOffer = TypedDict(
    "ShareOffer",
    {
        "type": Literal["share_offer"],
        "conversation": str,
        "from": Side,
        "share": str,
        "sdp": str,
    },
)

ShareAnswer = TypedDict(
    "ShareAnswer",
    {
        "type": Literal["share_answer"],
        "conversation": str,
        "from": Side,
        "share": str,
        "sdp": str,
    },
)

ShareCandidate = TypedDict(
    "ShareCandidate",
    {
        "type": Literal["share_candidate"],
        "conversation": str,
        "from": Side,
        "share": str,
        "candidate": Candidate,
    },
)

ShareStop = TypedDict(
    "ShareStop",
    {
        "type": Literal["share_stop"],
        "conversation": str,
        "from": Side,
        "share": str,
        "reason": NotRequired[Literal["failed"]],
    },
)

ShareFrame = ShareRequest | ShareReply | ShareOffer | ShareAnswer | ShareCandidate | ShareStop


# --- replies to one socket ----------


class Welcome(TypedDict):
    """The patron's welcome."""

    type: Literal["welcome"]
    conversation: str
    status: StatusName
    last_seq: int


class DeskConversation(TypedDict):
    id: str
    status: StatusName
    last_seq: int


class QueueItem(TypedDict):
    conversation: str
    library: str
    queue: str
    question: str
    name: str
    waiting_s: int
    page_url: str


class DeskQueue(TypedDict):
    """The waiting list of the desk's libraries (at most ``REFLIB_DESK_QUEUE_ITEMS`` items;
    ``total`` counts everyone waiting)."""

    type: Literal["queue"]
    items: list[QueueItem]
    total: int


class DeskWelcome(TypedDict):
    type: Literal["welcome"]
    user: str
    presence: PresenceName
    conversations: list[DeskConversation]
    queue: list[QueueItem]


class Ack(TypedDict):
    type: Literal["ack"]
    client_msg_id: str
    seq: int
    id: str


class Error(TypedDict):
    type: Literal["error"]
    code: str
    detail: str
    retry_after_s: NotRequired[int]
    # Echoed from the refused frame, when it had them.
    client_msg_id: NotRequired[str]
    conversation: NotRequired[str]
    share: NotRequired[str]


class Pong(TypedDict):
    type: Literal["pong"]


class Accepted(TypedDict):
    type: Literal["accepted"]
    conversation: str


class Assigned(TypedDict):
    """A colleague handed this librarian a conversation."""

    type: Literal["assigned"]
    conversation: str
    reason: str


STORED: dict[str, Any] = {
    "message": Message,
    "note": Note,
    "file": File,
    "status": Status,
    "checkin": Checkin,
    "checkin_answer": CheckinAnswer,
}
LIVE: dict[str, Any] = {
    "queue": QueuePosition,
    "typing": Typing,
    "read": Read,
    "share_request": ShareRequest,
    "share_reply": ShareReply,
    "share_offer": ShareOffer,
    "share_answer": ShareAnswer,
    "share_candidate": ShareCandidate,
    "share_stop": ShareStop,
}
# What one socket is sent besides the stored and live frames, by side.
PATRON_REPLIES: dict[str, Any] = {
    "welcome": Welcome,
    "ack": Ack,
    "error": Error,
    "pong": Pong,
}
DESK_REPLIES: dict[str, Any] = {
    "welcome": DeskWelcome,
    "queue": DeskQueue,
    "ack": Ack,
    "error": Error,
    "pong": Pong,
    "accepted": Accepted,
    "assigned": Assigned,
}


# --- builders ----------


def welcome(*, conversation: str, status: StatusName, last_seq: int) -> Welcome:
    return {"type": "welcome", "conversation": conversation, "status": status, "last_seq": last_seq}


def desk_welcome(
    *,
    user: str,
    presence: PresenceName,
    conversations: list[DeskConversation],
    queue: list[QueueItem],
) -> DeskWelcome:
    return {
        "type": "welcome",
        "user": user,
        "presence": presence,
        "conversations": conversations,
        "queue": queue,
    }


def desk_queue(*, items: list[QueueItem], total: int) -> DeskQueue:
    return {"type": "queue", "items": items, "total": total}


def ack(*, client_msg_id: str, seq: int, id: str) -> Ack:
    return {"type": "ack", "client_msg_id": client_msg_id, "seq": seq, "id": id}


def error(
    *, code: str, detail: str, retry_after_s: int | None = None, echo: dict[str, str] | None = None
) -> Error:
    """An error frame; ``echo`` holds the refused frame's ``client_msg_id``, ``conversation``
    and ``share`` when it had them, so that the client knows what was refused."""
    frame: Error = {"type": "error", "code": code, "detail": detail}
    if retry_after_s is not None:
        frame["retry_after_s"] = retry_after_s
    for key in ("client_msg_id", "conversation", "share"):
        if echo and key in echo:
            frame[key] = echo[key]
    return frame


def pong() -> Pong:
    return {"type": "pong"}


def accepted(*, conversation: str) -> Accepted:
    return {"type": "accepted", "conversation": conversation}


def assigned(*, conversation: str, reason: str) -> Assigned:
    return {"type": "assigned", "conversation": conversation, "reason": reason}


def queue_position(*, position: int, estimated_wait_s: int | None) -> QueuePosition:
    return {"type": "queue", "position": position, "estimated_wait_s": estimated_wait_s}


def typing(*, conversation: str, sender: Side, active: bool) -> Typing:
    return {"type": "typing", "conversation": conversation, "from": sender, "active": active}


def read(*, conversation: str, sender: Side, seq: int) -> Read:
    return {"type": "read", "conversation": conversation, "from": sender, "seq": seq}


def share(*, step: str, conversation: str, sender: Side, fields: dict[str, Any]) -> ShareFrame:
    """A relayed ``share_*`` frame: the checked ``fields`` of the sender's frame, said to come
    from ``sender`` (the ``Share*`` type of ``step``)."""
    frame = {"type": f"share_{step}", "conversation": conversation, "from": sender, **fields}
    return cast(ShareFrame, frame)


def share_stop(*, conversation: str, sender: Side, share: str) -> ShareStop:
    return {"type": "share_stop", "conversation": conversation, "from": sender, "share": share}
