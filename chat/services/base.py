"""Appending to a conversation's log: the row lock, the next ``seq``, the doorbell.

Each stored event is appended under the conversation's row lock, which makes ``seq`` gapless
and race-free; its notification is published after commit (chat.events).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from chat import events
from chat.errors import ChatError
from chat.models import Conversation, Event, EventKind, Sender
from reflib.models import display_name


def _lock(conversation_id: int | None = None, *, public_id: str | None = None) -> Conversation:
    """Lock a conversation's row (by primary key or public id) for the rest of the transaction."""
    lookup: dict[str, Any] = {"pk": conversation_id}
    if public_id is not None:
        lookup = {"public_id": public_id}
    # of=self: lock only the conversation, not its queue and library rows, which every
    # conversation of the library shares.
    locked = Conversation.objects.select_for_update(of=("self",)).select_related("queue__library")
    try:
        return locked.get(**lookup)
    except Conversation.DoesNotExist:
        raise ChatError("not_found", _("No such conversation.")) from None


def _append(
    conversation: Conversation,
    *,
    kind: EventKind,
    sender: Sender,
    author: User | None = None,
    body: str = "",
    data: dict[str, Any] | None = None,
    client_msg_id: str | None = None,
    staff_only: bool = False,
) -> Event:
    """Append an event to a conversation that the caller has locked (``_lock``)."""
    conversation.last_seq += 1
    Conversation.objects.filter(pk=conversation.pk).update(last_seq=conversation.last_seq)
    event = Event.objects.create(
        conversation=conversation,
        seq=conversation.last_seq,
        kind=kind,
        sender=sender,
        author=author,
        author_name=_author_name(sender, author, conversation),
        body=body,
        data=data or {},
        client_msg_id=client_msg_id,
        staff_only=staff_only,
    )
    events.publish_event(conversation, event)
    return event


def _author_name(sender: Sender, author: User | None, conversation: Conversation) -> str:
    if sender == Sender.PATRON:
        return conversation.patron_display_name
    if author is not None:
        return display_name(author)
    return conversation.library.name


def _answered_by(conversation: Conversation) -> dict[str, Any]:
    """Who answers the conversation, as its status events record it: the display name for
    everyone, and the user's id, by which that librarian's desks know the conversation is theirs
    (display names need not be unique)."""
    if conversation.librarian is None:
        return {"librarian": None}
    return {
        "librarian": display_name(conversation.librarian),
        "librarian_id": conversation.librarian_id,
    }


def _status_event(conversation: Conversation, *, reason: str = "") -> Event:
    data: dict[str, Any] = {"status": conversation.status, **_answered_by(conversation)}
    if reason:
        data["reason"] = reason
    return _append(conversation, kind=EventKind.STATUS, sender=Sender.SYSTEM, data=data)
