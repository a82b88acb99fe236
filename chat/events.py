"""The one door to the real-time world: everything the chat publishes goes through here.

Services call these functions inside their transaction; the notice goes out only after the
transaction commits (``transaction.on_commit``), so a socket that hears a doorbell always finds
the stored event in the database. A conversation's events and live frames go to its followers
through chat.doorbell (one Redis ``PUBLISH``); the desks' notices (queue changes, transfers,
access changes) go to their groups on the channel layer. Both are at-most-once: a dropped
notification is repaired by the socket's replay from the database (by ``seq``).

No ``from __future__ import annotations``: the notices' optional keys are read from their
evaluated annotations (chat.frames says the same).
"""

import logging
import uuid
from typing import Any, Literal, NotRequired, TypedDict, cast

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chat import doorbell, frames
from chat.models import Conversation, Event, EventKind
from chat.outages import LAYER_ERRORS

log = logging.getLogger(__name__)


def library_desk_group(library_id: int) -> str:
    return f"chat.desk.{library_id}"


def user_group(user_id: int) -> str:
    return f"chat.user.{user_id}"


LiveFrame = frames.QueuePosition | frames.Typing | frames.Read | frames.ShareFrame


class EventNotice(TypedDict):
    """Channel-layer message for a stored event; ``staff_only`` events never reach patrons.
    ``librarian_id`` is the librarian a status event records: desks tell each librarian whether
    the conversation is theirs (``mine``), and no patron ever sees a user's id."""

    type: Literal["chat.event"]
    event: frames.StoredFrame
    staff_only: bool
    librarian_id: NotRequired[int]


class LiveNotice(TypedDict):
    """Channel-layer message for a live-only frame (typing, read, queue position)."""

    type: Literal["chat.live"]
    frame: LiveFrame
    audience: Literal["all", "patron", "staff"]
    origin: NotRequired[str]
    # Only this librarian's desks (screen-sharing signalling, for the one answering the chat).
    user: NotRequired[int]


class PositionsNotice(TypedDict):
    """A queue's waiting conversations (public ids) in order, with their estimated waits."""

    type: Literal["chat.positions"]
    waiting: list[tuple[str, int | None]]


class QueueNotice(TypedDict):
    """A library's waiting list changed; ``id`` names this change (desks share one read)."""

    type: Literal["chat.queue_changed"]
    id: str


class UserNotice(TypedDict):
    type: Literal["chat.user_conversation"]
    conversation: str
    reason: str


def event_frame(event: Event, conversation_public_id: str) -> frames.StoredFrame:
    """Serialise a stored event for the wire (its shape is the kind's in chat.frames)."""
    seq, ts = event.seq, event.created_at.isoformat()
    sender = cast(frames.From, event.sender)
    data = event.data
    if event.kind == EventKind.MESSAGE:
        message: frames.Message = {
            "type": "message",
            "conversation": conversation_public_id,
            "seq": seq,
            "ts": ts,
            "id": event.public_id,
            "name": event.author_name,
            "body": event.body,
            "client_msg_id": event.client_msg_id,
            "from": sender,
        }
        if "action" in data:
            message["action"] = data["action"]
        return message
    if event.kind == EventKind.NOTE:
        return {
            "type": "note",
            "conversation": conversation_public_id,
            "seq": seq,
            "ts": ts,
            "id": event.public_id,
            "name": event.author_name,
            "body": event.body,
            "client_msg_id": event.client_msg_id,
        }
    if event.kind == EventKind.FILE:
        return {
            "type": "file",
            "conversation": conversation_public_id,
            "seq": seq,
            "ts": ts,
            "id": event.public_id,
            "from": sender,
            "name": event.author_name,
            "filename": data.get("filename", ""),
            "size": data.get("size", 0),
            "content_type": data.get("content_type", ""),
            "url": data.get("url", ""),
        }
    if event.kind == EventKind.STATUS:
        status: frames.Status = {
            "type": "status",
            "conversation": conversation_public_id,
            "seq": seq,
            "ts": ts,
            "status": data["status"],
            "librarian": data.get("librarian"),
        }
        if data.get("reason"):
            status["reason"] = data["reason"]
        if "sharing" in data:
            status["sharing"] = data["sharing"]
            status["sharer"] = data["sharer"]
        return status
    if event.kind == EventKind.CHECKIN:
        return {
            "type": "checkin",
            "conversation": conversation_public_id,
            "seq": seq,
            "ts": ts,
            "id": event.public_id,
            "from": sender,
            "name": event.author_name,
            "body": event.body,
        }
    return {
        "type": "checkin_answer",
        "conversation": conversation_public_id,
        "seq": seq,
        "ts": ts,
        "id": data["checkin"],
        "answer": data["answer"],
    }


def status_librarian_id(event: Event) -> int | None:
    """The user answering the conversation as a status event records it (older events: None)."""
    if event.kind != EventKind.STATUS:
        return None
    librarian_id = event.data.get("librarian_id")
    return librarian_id if isinstance(librarian_id, int) else None


def _send(group: str, message: dict[str, Any]) -> None:
    """Ring a group's doorbell after a commit. The write has happened: a layer failure is
    logged, not raised, and clients recover the event by replay when they next hear or resume.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group, message)
    except LAYER_ERRORS as error:
        log.warning("channel layer unreachable; notification for %s dropped (%s)", group, error)
    except Exception:
        log.exception("channel layer refused a notification for %s", group)


def _event_notice(event: Event, conversation_public_id: str) -> EventNotice:
    notice: EventNotice = {
        "type": "chat.event",
        "event": event_frame(event, conversation_public_id),
        "staff_only": event.staff_only,
    }
    librarian_id = status_librarian_id(event)
    if librarian_id is not None:
        notice["librarian_id"] = librarian_id
    return notice


def publish_event(conversation: Conversation, event: Event) -> None:
    """Ring the conversation's doorbell for a stored event once the transaction commits."""
    notice = _event_notice(event, conversation.public_id)
    doorbell.ring_on_commit(conversation.public_id, dict(notice))


async def publish_event_now(conversation_public_id: str, event: Event) -> None:
    """Ring for an event that is already committed (the fast path, chat.services.fast_path)."""
    await doorbell.ring(conversation_public_id, dict(_event_notice(event, conversation_public_id)))


def publish_queue_changed(*library_ids: int) -> None:
    notice: QueueNotice = {"type": "chat.queue_changed", "id": uuid.uuid4().hex}
    for library_id in set(library_ids):
        group = library_desk_group(library_id)
        transaction.on_commit(lambda group=group: _send(group, dict(notice)))  # type: ignore[misc]


def publish_live(
    conversation_public_id: str,
    frame: LiveFrame,
    *,
    audience: Literal["all", "patron", "staff"] = "all",
) -> None:
    notice: LiveNotice = {"type": "chat.live", "frame": frame, "audience": audience}
    doorbell.ring_on_commit(conversation_public_id, dict(notice))


def publish_positions(waiting: list[tuple[str, int | None]]) -> None:
    """A queue's waiting patrons in order, each with an estimated wait (at once: the caller
    runs after commit). Each patron's socket gets its own ``queue`` frame (chat.doorbell)."""
    notice: PositionsNotice = {"type": "chat.positions", "waiting": waiting}
    doorbell.ring_sync(doorbell.POSITIONS, dict(notice))


async def publish_live_now(
    conversation_public_id: str,
    frame: LiveFrame,
    *,
    origin: str,
    audience: Literal["all", "patron", "staff"] = "all",
    user: int | None = None,
) -> None:
    """Relay a live-only frame (typing) from a consumer; nothing is stored, so no commit waits.

    ``origin`` is the sending socket, so the sender does not hear its own typing. Live-only
    frames are at-most-once: during an outage they are simply not relayed.
    """
    notice: LiveNotice = {
        "type": "chat.live",
        "frame": frame,
        "audience": audience,
        "origin": origin,
    }
    if user is not None:
        notice["user"] = user
    await doorbell.ring(conversation_public_id, dict(notice))


def publish_to_user(user_id: int, conversation_public_id: str, reason: str) -> None:
    notice: UserNotice = {
        "type": "chat.user_conversation",
        "conversation": conversation_public_id,
        "reason": reason,
    }
    group = user_group(user_id)
    transaction.on_commit(lambda: _send(group, dict(notice)))


def staff_access_changed_receiver(sender: object, *, user_id: int, **kwargs: object) -> None:
    """A staff member's libraries or role changed (reflib's signal, sent after commit): their
    open desks close with 4409 and reconnect, so that they hold only their current access."""
    _send(user_group(user_id), {"type": "chat.access_changed"})
