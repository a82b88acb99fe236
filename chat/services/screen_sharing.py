"""The transcript's record of a screen share: "started" and "ended" as status events.

What was shown is not kept: the video never passes through reflib, and the signalling is
relayed live by the consumers (chat.sharing holds the share's consent state).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from chat import events, frames, sharing
from chat.models import Conversation, Event, EventKind, Sender
from chat.services.base import _answered_by, _append, _lock


@transaction.atomic
def screen_sharing_record(*, conversation_id: int, sharer: Sender, state: str) -> Event:
    """The transcript's note that a screen share started or ended (what was shown is not
    kept: the video never passes through reflib)."""
    conversation = _lock(conversation_id)
    return _screen_sharing_event(conversation, sharer=sharer, state=state)


def _screen_sharing_event(conversation: Conversation, *, sharer: Sender, state: str) -> Event:
    data: dict[str, Any] = {
        "status": conversation.status,
        **_answered_by(conversation),
        "reason": f"screen sharing {state}",
        "sharing": state,
        "sharer": sharer,
    }
    return _append(conversation, kind=EventKind.STATUS, sender=Sender.SYSTEM, data=data)


def screen_sharing_end(conversation: Conversation) -> None:
    """A conversation that ends or changes hands ends its screen share too, noted before the
    status event that says so."""
    share = sharing.share_forget(conversation_id=conversation.pk)
    if share is None:
        return
    if share.state == "live":
        _screen_sharing_event(conversation, sharer=Sender(share.sharer), state="ended")
    # The librarian's desk stops by itself (the chat is no longer theirs); the patron is told.
    stop = frames.share_stop(
        conversation=conversation.public_id, sender="librarian", share=share.id
    )
    events.publish_live(conversation.public_id, stop, audience="patron")
