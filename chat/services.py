"""Every write of the chat goes through these functions (STYLE.md: services own writes).

Each stored event is appended under the conversation's row lock, which makes ``seq`` gapless
and race-free; the notification is published after commit (chat.events). Callers check
permissions first (``check_*`` helpers here, or the consumer/view) and catch ``ChatError``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from chat import events, retention, sharing
from chat.errors import ChatError
from chat.models import (
    Attachment,
    Conversation,
    Event,
    EventKind,
    Participant,
    PatronBlock,
    Presence,
    PresenceState,
    Sender,
    Status,
    Ticket,
    TicketMessage,
    TicketSource,
    hash_token,
    new_token,
)
from chat.selectors import (
    PRESENCE_TIMEOUT,
    estimated_wait_s,
    open_chat_counts,
    queue_availability,
    shift_end_notices,
    wait_model,
    waiting_conversations,
)
from chat.signals import conversation_ended, conversation_rated
from reflib.models import Library, Membership, Queue, display_name
from staffing import selectors as roster

log = logging.getLogger(__name__)

MAX_BODY = 4000
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
CHECKIN_ANSWERS = ("yes", "partly", "no")
PATRON_GONE_AFTER = timedelta(seconds=60)
PATRON_SILENT_AFTER = timedelta(seconds=120)
# The same answer for an unknown username and another library's: no username is confirmed.
NO_SUCH_COLLEAGUE = "No such colleague."


# --- appending events ----------


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


def _queue_changed(conversation: Conversation) -> None:
    library_ids = {conversation.queue.library_id, conversation.library_id}
    events.publish_queue_changed(*library_ids)
    transaction.on_commit(lambda: positions_publish(queue_ids=[conversation.queue_id]))


# --- patron side ----------


@dataclass(frozen=True)
class StartedConversation:
    conversation: Conversation
    token: str


def check_patron_not_blocked(*, library: Library, token_hash: str = "", ip: str | None) -> None:
    if PatronBlock.objects.active(library=library, token_hash=token_hash, ip=ip):
        raise ChatError("forbidden", _("You cannot start a chat with this library right now."))


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
    conversation = _lock(conversation.pk)
    _append(conversation, kind=EventKind.MESSAGE, sender=Sender.PATRON, body=question)
    _status_event(conversation)
    _queue_changed(conversation)
    return StartedConversation(conversation=conversation, token=token)


def message_send(
    *,
    conversation_id: int | None = None,
    public_id: str | None = None,
    sender: Sender,
    author: User | None,
    client_msg_id: str,
    body: str,
    note: bool = False,
) -> tuple[Event, bool]:
    """Store a message (or a staff note); a repeated ``client_msg_id`` returns the stored one.

    The conversation is given by primary key or public id. Returns ``(event, created)``.
    Messages need an open conversation; a librarian must be its current librarian, and a note's
    author a librarian who may see it.

    The hot path of the chat: one row lock, one update, one insert. A resend is found by the
    unique ``(conversation, client_msg_id)`` constraint, not by a query before every insert.
    """
    try:
        with transaction.atomic():
            conversation = _lock(conversation_id, public_id=public_id)
            conversation_id = conversation.pk
            if author is not None:
                # Before any state check: another library's chat is "not found", not "closed".
                check_can_see(conversation, author)
            if not note:
                _check_can_message(conversation, sender, author)
            event = _append(
                conversation,
                kind=EventKind.NOTE if note else EventKind.MESSAGE,
                sender=sender,
                author=author,
                body=body,
                client_msg_id=client_msg_id,
                staff_only=note,
            )
            return event, True
    except (IntegrityError, ChatError) as error:
        # A resend (maybe after the chat closed); the row lock makes the seq unique, so an
        # IntegrityError can only be the client id. Anything else is re-raised, and someone
        # who may not see the conversation learns nothing about its messages.
        if conversation_id is None or getattr(error, "code", None) == "not_found":
            raise
        existing = Event.objects.filter(
            conversation_id=conversation_id, client_msg_id=client_msg_id
        ).first()
        if existing is None:
            raise
    _check_same_sender(existing, sender, author, note)
    # A resend may follow a lost notification: ring the doorbell again (clients drop what
    # they already have, by seq).
    events.publish_event(existing.conversation, existing)
    return existing, False


def _check_same_sender(existing: Event, sender: Sender, author: User | None, note: bool) -> None:
    same = (
        existing.sender == sender
        and existing.author_id == (author.pk if author else None)
        and existing.staff_only == note
    )
    if not same:
        raise ChatError("conflict", _("This client_msg_id was already used for another message."))


def _check_can_message(conversation: Conversation, sender: Sender, author: User | None) -> None:
    if not conversation.is_open:
        raise ChatError("closed", _("This conversation has ended."))
    if sender == Sender.LIBRARIAN:
        if conversation.status != Status.ACTIVE:
            raise ChatError("conflict", _("Accept the conversation before writing to it."))
        if author is None or conversation.librarian_id != author.pk:
            raise ChatError("forbidden", _("Another librarian is answering this conversation."))


@transaction.atomic
def file_attach(
    *,
    conversation_id: int,
    sender: Sender,
    author: User | None,
    upload: UploadedFile,
    content_type: str,
    filename: str,
) -> Event:
    conversation = _lock(conversation_id)
    _check_can_message(conversation, sender, author)
    attachment = Attachment.objects.create(
        conversation=conversation,
        file=upload,
        filename=filename,
        size=upload.size or 0,
        content_type=content_type,
    )
    url = f"/api/v1/conversations/{conversation.public_id}/files/{attachment.public_id}"
    return _append(
        conversation,
        kind=EventKind.FILE,
        sender=sender,
        author=author,
        data={
            "filename": filename,
            "size": attachment.size,
            "content_type": content_type,
            "url": url,
            "attachment": attachment.public_id,
        },
    )


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
def read_mark(*, conversation_id: int, sender: Sender, user: User | None, seq: int) -> None:
    conversation = Conversation.objects.get(pk=conversation_id)
    seq = min(seq, conversation.last_seq)
    frame = {"type": "read", "conversation": conversation.public_id, "seq": seq}
    if sender == Sender.PATRON:
        Conversation.objects.filter(pk=conversation_id, patron_last_read_seq__lt=seq).update(
            patron_last_read_seq=seq
        )
        events.publish_live(conversation.public_id, frame | {"from": "patron"}, audience="staff")
    else:
        Participant.objects.filter(
            conversation_id=conversation_id, user=user, last_read_seq__lt=seq
        ).update(last_read_seq=seq)
        events.publish_live(conversation.public_id, frame | {"from": "librarian"})


def patron_connection(*, conversation_id: int, connected: bool) -> None:
    """Record that the patron's socket opened, is alive, or closed (for ``abandoned``)."""
    Conversation.objects.filter(pk=conversation_id).update(
        patron_connected=connected, patron_seen_at=timezone.now()
    )


@transaction.atomic
def checkin_answer(*, conversation_id: int, checkin_id: str, answer: str) -> Event:
    if answer not in CHECKIN_ANSWERS:
        raise ChatError("invalid", _("The answer must be yes, partly or no."))
    conversation = _lock(conversation_id)
    checkin = Event.objects.filter(
        conversation=conversation, kind=EventKind.CHECKIN, public_id=checkin_id
    ).first()
    if checkin is None:
        raise ChatError("not_found", _("No such check-in in this conversation."))
    if Event.objects.filter(
        conversation=conversation, kind=EventKind.CHECKIN_ANSWER, data__checkin=checkin_id
    ).exists():
        raise ChatError("conflict", _("This check-in was already answered."))
    return _append(
        conversation,
        kind=EventKind.CHECKIN_ANSWER,
        sender=Sender.PATRON,
        data={"checkin": checkin_id, "answer": answer},
    )


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


# --- librarian side ----------


def librarian_libraries(user: User) -> list[int]:
    if user.is_superuser:
        return list(Library.objects.values_list("pk", flat=True))
    return list(Membership.objects.filter(user=user).values_list("library_id", flat=True))


def check_can_see(conversation: Conversation, user: User) -> None:
    """A librarian sees a conversation of their libraries' queues, or one they are still in.

    Access follows *current* membership: a former member of a library sees none of its chats,
    whatever they took part in. A partner library's librarian sees a rolled-over conversation
    because its queue is now theirs; they never see the home library's other conversations.
    A librarian who handed a chat to a colleague (``left_at`` set) no longer sees it unless
    they are a member of its queue's library.
    """
    libraries = librarian_libraries(user) if user.is_active else []
    if conversation.queue.library_id in libraries:
        return
    if conversation.library_id in libraries and (
        Participant.objects.filter(
            conversation=conversation, user=user, left_at__isnull=True
        ).exists()
    ):
        return
    raise ChatError("not_found", _("No such conversation."))


def check_can_block(conversation: Conversation, user: User) -> None:
    """A block bars the patron from the conversation's home library: only that library's
    staff may set one (a partner library's librarian answering a rollover may not)."""
    check_can_see(conversation, user)
    if conversation.library_id not in librarian_libraries(user):
        raise ChatError("forbidden", _("Only the patron's own library can block them."))


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


def _check_owner(conversation: Conversation, user: User) -> None:
    if not conversation.is_open:
        raise ChatError("closed", _("This conversation has ended."))
    if conversation.librarian_id != user.pk:
        raise ChatError("forbidden", _("Only the librarian answering this chat can do that."))


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
    _check_owner(conversation, user)
    if (to_user is None) == (to_queue is None):
        raise ChatError("invalid", _("Transfer to either a colleague or a queue."))
    _screen_sharing_end(conversation)  # a share is between the patron and one librarian
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
        _check_owner(conversation, user)
    conversation.read_level = read_level
    conversation.tags = clean_tags(tags or [])
    # Closed, not abandoned, also while it waits: "abandoned" means the patron left.
    _finish(conversation, Status.CLOSED, reason="closed by librarian")
    return conversation


@transaction.atomic
def checkin_send(*, conversation_id: int, user: User) -> Event:
    conversation = _lock(conversation_id)
    _check_owner(conversation, user)
    return _append(
        conversation,
        kind=EventKind.CHECKIN,
        sender=Sender.LIBRARIAN,
        author=user,
        body=_("Does this answer your question?"),
    )


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


def _screen_sharing_end(conversation: Conversation) -> None:
    """A conversation that ends or changes hands ends its screen share too, noted before the
    status event that says so."""
    share = sharing.share_forget(conversation_id=conversation.pk)
    if share is None:
        return
    if share.state == "live":
        _screen_sharing_event(conversation, sharer=Sender(share.sharer), state="ended")
    # The librarian's desk stops by itself (the chat is no longer theirs); the patron is told.
    stop = {
        "type": "share_stop",
        "conversation": conversation.public_id,
        "from": "librarian",
        "share": share.id,
    }
    events.publish_live(conversation.public_id, stop, audience="patron")


def _finish(conversation: Conversation, status: Status, *, reason: str = "") -> None:
    """Move a locked open conversation to a final state and tell everyone."""
    _screen_sharing_end(conversation)
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


# --- presence ----------


def presence_set(*, user: User, state: PresenceState) -> Presence:
    now = timezone.now()
    presence, _created = Presence.objects.update_or_create(
        user=user, defaults={"state": state, "changed_at": now, "seen_at": now}
    )
    _presence_changed(user)
    return presence


def presence_stay(*, user: User, now: datetime | None = None) -> Presence:
    """The librarian stays available after the shift that ended (or ends next, when they are
    still on it): the sweep leaves them available."""
    now = now or timezone.now()
    current, _next = roster.current_and_next_shift(user=user, now=now)
    if current is not None:
        ends_at = current.end
    else:
        presence = Presence.objects.filter(user=user).first()
        notice = shift_end_notices([presence], now=now).get(user.pk) if presence else None
        if notice is None:
            raise ChatError("conflict", _("You have no shift ending now to stay on after."))
        ends_at = notice.ended_at
    presence, _created = Presence.objects.get_or_create(user=user)
    presence.staying_after = ends_at
    presence.save(update_fields=["staying_after"])
    return presence


def presence_touch(*, user: User) -> None:
    """A desk socket of ``user`` is alive (sent on connect and every heartbeat)."""
    updated = Presence.objects.filter(user=user).update(seen_at=timezone.now())
    if not updated:
        Presence.objects.get_or_create(user=user)


def _presence_changed(user: User) -> None:
    library_ids = librarian_libraries(user)
    events.publish_queue_changed(*library_ids)
    queue_ids = list(Queue.objects.filter(library_id__in=library_ids).values_list("pk", flat=True))
    transaction.on_commit(lambda: positions_publish(queue_ids=queue_ids))


# --- tickets ----------


@dataclass(frozen=True)
class CreatedTicket:
    ticket: Ticket
    access_key: str


@transaction.atomic
def ticket_create(
    *,
    queue: Queue,
    question: str,
    email: str,
    name: str = "",
    source: TicketSource = TicketSource.OFFLINE,
    conversation: Conversation | None = None,
) -> CreatedTicket:
    access_key = new_token()
    ticket = Ticket.objects.create(
        library=queue.library,
        queue=queue,
        conversation=conversation,
        source=source,
        question=question,
        patron_email=email,
        patron_name=name,
        access_hash=hash_token(access_key),
    )
    TicketMessage.objects.create(ticket=ticket, sender=Sender.PATRON, body=question)
    return CreatedTicket(ticket=ticket, access_key=access_key)


@transaction.atomic
def conversation_to_ticket(*, conversation_id: int, email: str) -> CreatedTicket:
    """The waiting patron leaves the question as a ticket instead of waiting on."""
    conversation = _lock(conversation_id)
    if conversation.status != Status.QUEUED:
        raise ChatError("conflict", _("Only a waiting chat can become a ticket."))
    conversation.patron_email = email
    created = ticket_create(
        queue=conversation.queue,
        question=conversation.question,
        email=email,
        name=conversation.patron_name,
        source=TicketSource.TIMEOUT,
        conversation=conversation,
    )
    _finish(conversation, Status.TICKET, reason="left as a question")
    return created


# --- queue positions and timers ----------


def positions_publish(*, queue_ids: list[int]) -> None:
    """Tell every waiting patron of these queues their position and estimated wait."""
    for queue in Queue.objects.filter(pk__in=queue_ids).select_related("library"):
        availability = queue_availability(queue)
        model = wait_model(queue)
        waiting = waiting_conversations([queue.library_id]).filter(queue=queue)
        for position, conversation in enumerate(waiting, start=1):
            frame = {
                "type": "queue",
                "position": position,
                "estimated_wait_s": estimated_wait_s(queue, position, availability, model),
            }
            events.publish_live(conversation.public_id, frame, audience="patron")


def _library_positions_publish(library_id: int) -> None:
    queue_ids = (
        Conversation.objects.filter(status=Status.QUEUED, queue__library_id=library_id)
        .order_by()
        .values_list("queue_id", flat=True)
        .distinct()
    )
    if queue_ids:
        positions_publish(queue_ids=list(queue_ids))


@dataclass
class SweepResult:
    presences_expired: int = 0
    shifts_ended: int = 0
    tickets_offered: int = 0
    rolled_over: int = 0
    missed: int = 0
    abandoned: int = 0


def sweep(*, now: datetime | None = None) -> SweepResult:
    """The chat's timers, run every few seconds by Celery beat; safe to run concurrently.

    Each step re-checks its condition under the conversation's lock, so two sweeps (or a
    sweep racing an accept) never act twice.
    """
    now = now or timezone.now()
    result = SweepResult()
    stale = Presence.objects.filter(
        state=PresenceState.AVAILABLE, seen_at__lt=now - PRESENCE_TIMEOUT
    ).select_related("user")
    for presence in stale:
        with transaction.atomic():
            updated = Presence.objects.filter(
                pk=presence.pk, state=PresenceState.AVAILABLE, seen_at__lt=now - PRESENCE_TIMEOUT
            ).update(state=PresenceState.AWAY, changed_at=now)
            if updated:
                result.presences_expired += 1
                _presence_changed(presence.user)

    available = Presence.objects.filter(state=PresenceState.AVAILABLE).select_related("user")
    for user_id, notice in shift_end_notices(available, now=now).items():
        if notice.staying or now < notice.away_at:
            continue
        with transaction.atomic():
            # Conditional: a librarian who just chose again (or said they stay) keeps it.
            updated = (
                Presence.objects.filter(
                    user_id=user_id,
                    state=PresenceState.AVAILABLE,
                    changed_at__lt=notice.ended_at,
                )
                .exclude(staying_after__gte=notice.ended_at)
                .update(state=PresenceState.AWAY, changed_at=now)
            )
            if updated:
                result.shifts_ended += 1
                _presence_changed(User.objects.get(pk=user_id))

    for conversation in Conversation.objects.filter(status=Status.QUEUED).select_related(
        "queue__library"
    ):
        with transaction.atomic():
            locked = _lock(conversation.pk)
            if locked.status != Status.QUEUED:
                continue
            _sweep_waiting(locked, now, result)
    return result


def _sweep_waiting(conversation: Conversation, now: datetime, result: SweepResult) -> None:
    queue = conversation.queue
    waited = now - conversation.queued_since
    silent = now - conversation.patron_seen_at
    # A connected patron's socket beats every 20 s; a process that died without closing its
    # sockets leaves ``patron_connected`` set, so a long silence counts as gone too.
    if silent > PATRON_SILENT_AFTER or (
        not conversation.patron_connected and silent > PATRON_GONE_AFTER
    ):
        if conversation.accepted_at is None:
            _finish(conversation, Status.ABANDONED, reason="patron left")
            result.abandoned += 1
        else:
            _finish(conversation, Status.CLOSED, reason="patron left")
        return
    missed_after = timedelta(seconds=conversation.origin_queue.missed_after_s)
    if conversation.accepted_at is None and now - conversation.created_at >= missed_after:
        _finish(conversation, Status.MISSED, reason="nobody answered")
        result.missed += 1
        return
    if conversation.accepted_at is not None and waited >= missed_after:
        # Answered before, then put back in a queue that nobody took it from: not a missed
        # chat (it was answered), so it ends as closed.
        _finish(conversation, Status.CLOSED, reason="nobody took over the chat")
        return
    if waited < timedelta(seconds=queue.unanswered_limit_s):
        return
    partner = _online_partner(queue) if not conversation.rolled_over else None
    if partner is not None:
        conversation.queue = partner
        conversation.rolled_over = True
        conversation.queued_since = now
        conversation.save(update_fields=["queue", "rolled_over", "queued_since"])
        _status_event(conversation, reason=f"rolled over to {partner.name}")
        events.publish_queue_changed(queue.library_id, partner.library_id)
        transaction.on_commit(lambda: positions_publish(queue_ids=[queue.pk, partner.pk]))
        result.rolled_over += 1
    elif conversation.ticket_offered_at is None:
        conversation.ticket_offered_at = now
        conversation.save(update_fields=["ticket_offered_at"])
        _append(
            conversation,
            kind=EventKind.MESSAGE,
            sender=Sender.SYSTEM,
            body=_(
                "No librarian is free yet. You can keep waiting, or leave your question "
                "and we will answer by e-mail."
            ),
            data={"action": "offer_ticket"},
        )
        result.tickets_offered += 1


def _online_partner(queue: Queue) -> Queue | None:
    for partner in (
        Queue.objects.partners_of(queue).filter(is_active=True).select_related("library")
    ):
        if queue_availability(partner).online:
            return partner
    return None


def transcript_lines(conversation: Conversation) -> list[str]:
    """The patron-visible transcript, for the e-mail."""
    lines = []
    for event in conversation.events.filter(staff_only=False).order_by("seq"):
        when = timezone.localtime(event.created_at, conversation.library.zone).strftime("%H:%M")
        if event.kind == EventKind.MESSAGE:
            lines.append(f"[{when}] {event.author_name}: {event.body}")
        elif event.kind == EventKind.FILE:
            lines.append(f"[{when}] {event.author_name} shared {event.data.get('filename', '')}")
    return lines


def base_url() -> str:
    return str(settings.REFLIB_BASE_URL)
