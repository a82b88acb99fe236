"""A conversation's life: start, accept, transfer, close, rate, erase, end, block; and the
queue bookkeeping that follows each change (the desks' waiting list, the patrons' positions).

Callers check permissions first (``chat.services.checks``, or the consumer or view) and catch
``ChatError``; each function here also re-checks under the conversation's row lock what a
concurrent change could have made untrue.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from chat import events, retention
from chat.errors import ChatError
from chat.models import (
    Conversation,
    Event,
    EventKind,
    Participant,
    PatronBlock,
    Sender,
    Status,
    Ticket,
    hash_token,
    new_token,
)
from chat.selectors import (
    estimated_wait_s,
    librarian_libraries,
    open_chat_counts,
    queue_outlook,
    waiting_conversations,
)
from chat.services.base import _append, _lock, _status_event
from chat.services.checks import check_can_block, check_can_see, check_owner
from chat.services.screen_sharing import screen_sharing_end
from chat.signals import conversation_ended, conversation_rated
from reflib.models import Queue, display_name

log = logging.getLogger(__name__)

MAX_TAGS = 20
MAX_TAG_LENGTH = 50
# The same answer for an unknown username and another library's: no username is confirmed.
NO_SUCH_COLLEAGUE = gettext_noop("No such colleague.")


@dataclass(frozen=True)
class StartedConversation:
    conversation: Conversation
    token: str


@transaction.atomic
def conversation_start(
    *,
    queue: Queue,
    question: str,
    name: str = "",
    email: str = "",
    page_url: str = "",
    ip: str | None = None,
) -> StartedConversation:
    """Queue a new chat. The caller has checked that the queue is online."""
    token = new_token()
    now = timezone.now()
    conversation = Conversation.objects.create(
        library=queue.library,
        queue=queue,
        origin_queue=queue,
        token_hash=hash_token(token),
        question=question,
        patron_name=name,
        patron_email=email,
        page_url=page_url,
        patron_ip=ip,
        created_at=now,
        queued_since=now,
        patron_seen_at=now,
    )
    # No lock: nobody else sees the row before this transaction commits.
    _append(conversation, kind=EventKind.MESSAGE, sender=Sender.PATRON, body=question)
    _status_event(conversation)
    # One more patron in line changes neither who answers nor how long chats take.
    _queue_changed(conversation, outlook_changed=False)
    return StartedConversation(conversation=conversation, token=token)


@transaction.atomic
def conversation_end_by_patron(*, conversation_id: int) -> Conversation:
    """The patron ends the chat: abandoned when nobody had answered, otherwise closed."""
    conversation = _lock(conversation_id)
    if not conversation.is_open:
        return conversation
    was_queued = conversation.status == Status.QUEUED
    _finish(
        conversation, Status.ABANDONED if was_queued else Status.CLOSED, reason="ended by patron"
    )
    return conversation


@transaction.atomic
def conversation_rate(*, conversation_id: int, score: int, comment: str = "") -> Conversation:
    conversation = _lock(conversation_id)
    if conversation.is_open:
        raise ChatError("conflict", _("You can rate the chat once it has ended."))
    conversation.rating = score
    conversation.rating_comment = comment
    conversation.save(update_fields=["rating", "rating_comment"])
    pk = conversation.pk
    transaction.on_commit(lambda: conversation_rated.send(sender=Conversation, conversation_id=pk))
    return conversation


@transaction.atomic
def conversation_email_set(*, conversation_id: int, email: str) -> Conversation:
    """The patron confirms, inside the live chat, the address a transcript may go to."""
    conversation = _lock(conversation_id)
    if not conversation.is_open:
        raise ChatError("closed", _("An address can be confirmed only while the chat goes on."))
    conversation.patron_email = email
    conversation.save(update_fields=["patron_email"])
    return conversation


@transaction.atomic
def conversation_erase(*, conversation_id: int) -> None:
    """Erase the patron's data at their request; the statistics (times, levels) remain."""
    conversation = _lock(conversation_id)
    if conversation.is_open:
        _finish(
            conversation,
            Status.CLOSED if conversation.accepted_at else Status.ABANDONED,
            reason="erased by patron",
        )
    for attachment in conversation.attachments.all():
        attachment.file.delete(save=False)
    conversation.attachments.all().delete()
    # Words and files go; the shape of the chat (status changes, check-in answers) stays for
    # the statistics. A status event's free-text reason (a transfer note) is words too.
    Event.objects.filter(conversation=conversation).exclude(
        kind__in=[EventKind.STATUS, EventKind.CHECKIN_ANSWER]
    ).update(body="", data={}, author_name="")
    for event in Event.objects.filter(conversation=conversation, kind=EventKind.STATUS):
        event.data = {"status": event.data.get("status"), "librarian": event.data.get("librarian")}
        event.save(update_fields=["data"])
    conversation.question = ""
    conversation.patron_name = ""
    conversation.patron_email = ""
    conversation.page_url = ""
    conversation.patron_ip = None
    conversation.rating_comment = ""
    # The token stops working: a random hash that no token maps to.
    conversation.token_hash = hash_token(new_token())
    conversation.erased_at = timezone.now()
    conversation.save()
    # The ticket the chat became holds the same question, name and e-mail.
    ticket = Ticket.objects.filter(conversation=conversation).first()
    if ticket is not None:
        retention.ticket_erase(ticket_id=ticket.pk)
    log.info(
        "conversation %s of library %s erased at the patron's request",
        conversation.public_id,
        conversation.library.slug,
    )


@transaction.atomic
def conversation_accept(*, conversation_id: int, user: User) -> Conversation:
    """First librarian wins: the row lock serialises accepts, the loser gets ``conflict``."""
    conversation = _lock(conversation_id)
    check_can_see(conversation, user)
    if conversation.status != Status.QUEUED:
        raise ChatError("conflict", _("Another librarian has already accepted this chat."))
    limit = conversation.queue.library.max_chats_per_librarian
    if open_chat_counts([user.pk]).get(user.pk, 0) >= limit:
        raise ChatError("conflict", _("You are at your limit of concurrent chats."))
    now = timezone.now()
    conversation.status = Status.ACTIVE
    conversation.librarian = user
    conversation.accepted_at = now
    conversation.save(update_fields=["status", "librarian", "accepted_at"])
    Participant.objects.get_or_create(conversation=conversation, user=user)
    _status_event(conversation)
    _queue_changed(conversation)
    return conversation


@transaction.atomic
def conversation_transfer(
    *,
    conversation_id: int,
    user: User,
    to_user: User | None = None,
    to_queue: Queue | None = None,
    note: str = "",
) -> Conversation:
    """Hand the chat to a colleague (stays active) or to another queue (queued again)."""
    conversation = _lock(conversation_id)
    check_owner(conversation, user)
    if (to_user is None) == (to_queue is None):
        raise ChatError("invalid", _("Transfer to either a colleague or a queue."))
    screen_sharing_end(conversation)  # a share is between the patron and one librarian
    if note:
        _append(
            conversation,
            kind=EventKind.NOTE,
            sender=Sender.LIBRARIAN,
            author=user,
            body=note,
            staff_only=True,
        )
    if to_user is not None:
        if to_user.pk == user.pk:
            raise ChatError("invalid", _("You already have this chat."))
        if conversation.queue.library_id not in librarian_libraries(to_user):
            raise ChatError("not_found", _(NO_SUCH_COLLEAGUE))
        conversation.librarian = to_user
        conversation.save(update_fields=["librarian"])
        Participant.objects.get_or_create(conversation=conversation, user=to_user)
        Participant.objects.filter(conversation=conversation, user=user).update(
            left_at=timezone.now()
        )
        _status_event(conversation, reason=f"transferred to {display_name(to_user)}")
        events.publish_to_user(to_user.pk, conversation.public_id, "transfer")
    else:
        assert to_queue is not None
        if not to_queue.is_active:
            raise ChatError("not_found", _("No such queue."))
        if to_queue.library_id != conversation.queue.library_id and to_queue.pk not in set(
            Queue.objects.partners_of(conversation.queue).values_list("pk", flat=True)
        ):
            raise ChatError(
                "forbidden", _("You can transfer only to your library's queues or its partners.")
            )
        conversation.queue = to_queue
        conversation.status = Status.QUEUED
        conversation.librarian = None
        conversation.queued_since = timezone.now()
        conversation.save(update_fields=["queue", "status", "librarian", "queued_since"])
        _status_event(conversation, reason=f"transferred to {to_queue.name}")
        _queue_changed(conversation)
    return conversation


def clean_tags(tags: Iterable[Any]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip() or len(tag) > MAX_TAG_LENGTH:
            raise ChatError("invalid", _("Tags are short pieces of text (up to 50 characters)."))
        value = re.sub(r"\s+", " ", tag.strip()).lower()
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > MAX_TAGS:
        raise ChatError("invalid", _("At most 20 tags."))
    return cleaned


@transaction.atomic
def conversation_close(
    *,
    conversation_id: int,
    user: User,
    read_level: int | None = None,
    tags: list[str] | None = None,
) -> Conversation:
    conversation = _lock(conversation_id)
    if conversation.status == Status.QUEUED:
        check_can_see(conversation, user)
    else:
        check_owner(conversation, user)
    conversation.read_level = read_level
    conversation.tags = clean_tags(tags or [])
    # Closed, not abandoned, also while it waits: "abandoned" means the patron left.
    _finish(conversation, Status.CLOSED, reason="closed by librarian")
    return conversation


def _finish(conversation: Conversation, status: Status, *, reason: str = "") -> None:
    """Move a locked open conversation to a final state and tell everyone."""
    screen_sharing_end(conversation)
    was_queued = conversation.status == Status.QUEUED
    conversation.status = status
    conversation.closed_at = timezone.now()
    conversation.save()
    _status_event(conversation, reason=reason)
    if was_queued:
        _queue_changed(conversation)
    else:
        # A librarian's chat slot is free again: the waits of the library's patrons shrink.
        library_id = conversation.queue.library_id
        transaction.on_commit(lambda: _library_positions_publish(library_id))
    pk = conversation.pk
    transaction.on_commit(lambda: conversation_ended.send(sender=Conversation, conversation_id=pk))


@transaction.atomic
def patron_block(*, conversation_id: int, user: User, hours: int, reason: str = "") -> PatronBlock:
    """End the chat and refuse the patron's token and IP address for ``hours``."""
    conversation = _lock(conversation_id)
    check_can_block(conversation, user)
    block = PatronBlock.objects.create(
        library=conversation.library,
        token_hash=conversation.token_hash,
        ip=conversation.patron_ip,
        until=timezone.now() + timedelta(hours=hours),
        reason=reason,
        created_by=user,
    )
    if conversation.is_open:
        _finish(conversation, Status.CLOSED, reason="ended by staff")
    return block


def _queue_changed(conversation: Conversation, *, outlook_changed: bool = True) -> None:
    library_ids = {conversation.queue.library_id, conversation.library_id}
    events.publish_queue_changed(*library_ids)
    queue_id = conversation.queue_id
    transaction.on_commit(
        lambda: positions_publish(queue_ids=[queue_id], outlook_changed=outlook_changed)
    )


def positions_publish(*, queue_ids: list[int], outlook_changed: bool = True) -> None:
    """Tell every waiting patron of these queues their position and estimated wait.

    One notice per queue, whatever its length: each process hands its own waiting patrons
    their line of it (chat.doorbell), so a change costs the same with 5 or 500 waiting.
    ``outlook_changed``: the change may have altered who answers or how long chats take, so
    the queues' outlooks are read afresh (``selectors.queue_outlook``).
    """
    for queue in Queue.objects.filter(pk__in=queue_ids).select_related("library"):
        outlook = queue_outlook(queue, fresh=outlook_changed)
        waiting = (
            waiting_conversations([queue.library_id])
            .filter(queue=queue)
            .values_list("public_id", flat=True)
        )
        lines = [
            (public_id, estimated_wait_s(queue, position, outlook.availability, outlook.model))
            for position, public_id in enumerate(waiting, start=1)
        ]
        if lines:
            events.publish_positions(lines)


def _library_positions_publish(library_id: int) -> None:
    queue_ids = (
        Conversation.objects.filter(status=Status.QUEUED, queue__library_id=library_id)
        .order_by()
        .values_list("queue_id", flat=True)
        .distinct()
    )
    if queue_ids:
        positions_publish(queue_ids=list(queue_ids))
