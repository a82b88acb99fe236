"""The synchronous half of the consumers: look up, check, call a service, shape the reply.

Consumers run these in a thread (``chat.consumers.orm``); most frames cost one call, a few
more (a hello also replays and reads the position, an accept also replays). What is checked
here is the socket's part of "check, then do": the conversation exists and this staff member
may see it, the socket's rate limits, which side may take part in a screen share. The rules of
each write are in chat.services; the replies are chat.frames' types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.auth.models import User
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from chat import frames, origins, selectors, services, sharing
from chat.errors import ChatError
from chat.events import event_frame, status_librarian_id
from chat.models import Conversation, Event, PresenceState, Sender, Status
from chat.ratelimit import check_rate, check_socket_rate
from reflib.models import Queue, display_name

TOO_FAST = gettext_noop("You are sending messages too fast.")


@dataclass(frozen=True)
class ConversationRef:
    conversation_id: int
    public_id: str


@dataclass(frozen=True)
class PatronSession:
    conversation_id: int
    public_id: str
    library_id: int
    token_hash: str
    status: str
    last_seq: int
    # The per-address key of the socket (an IPv4 address or an IPv6 /64).
    address: str = "unknown"
    # The name the patron's messages carry.
    display_name: str = ""


def origin_allowed_anywhere(*, origin: str | None, host: str) -> bool:
    return origins.is_allowed_anywhere(origin, host=host)


def events_after(
    *, conversation_id: int, public_id: str, seq: int
) -> list[tuple[int, frames.StoredFrame, bool, int | None]]:
    """Each stored event after ``seq``: its seq, frame, whether it is staff-only, and a status
    event's librarian (``events.status_librarian_id``)."""
    stored = Event.objects.filter(conversation_id=conversation_id, seq__gt=seq).order_by("seq")
    return [
        (event.seq, event_frame(event, public_id), event.staff_only, status_librarian_id(event))
        for event in stored
    ]


def last_seqs(*, conversation_ids: list[int]) -> dict[int, int]:
    """The newest ``seq`` of each conversation: what a socket checks its cursors against."""
    if not conversation_ids:
        return {}
    rows = Conversation.objects.filter(pk__in=conversation_ids).values_list("pk", "last_seq")
    return dict(rows)


def ack(event: Event) -> frames.Ack:
    return frames.ack(client_msg_id=event.client_msg_id or "", seq=event.seq, id=event.public_id)


# --- patron ----------


def patron_hello(
    *, token: str, origin: str | None, host: str, address: str = "unknown"
) -> PatronSession:
    conversation = Conversation.objects.by_token(token)
    if conversation is None:
        raise ChatError("unauthorized", "Unknown token.")
    if not selectors.patron_may_read(conversation):
        raise ChatError("unauthorized", selectors.NO_LONGER_READABLE)
    if not origins.is_allowed(origin, host=host, library_id=conversation.library_id):
        raise ChatError("forbidden", "This site may not use this library's chat.")
    services.patron_connection(conversation_id=conversation.pk, connected=True)
    return PatronSession(
        conversation_id=conversation.pk,
        public_id=conversation.public_id,
        library_id=conversation.library_id,
        token_hash=conversation.token_hash,
        status=conversation.status,
        last_seq=conversation.last_seq,
        address=address,
        display_name=conversation.patron_display_name,
    )


def patron_position(*, session: PatronSession) -> frames.QueuePosition | None:
    conversation = Conversation.objects.select_related("queue__library").get(
        pk=session.conversation_id
    )
    if conversation.status != Status.QUEUED:
        return None
    position = selectors.queue_position(conversation)
    return frames.queue_position(
        position=position,
        estimated_wait_s=selectors.estimated_wait_s(conversation.queue, position),
    )


def patron_message_allowed(*, session: PatronSession) -> None:
    """The per-token and per-address message limits; checked in the event loop, before the
    message is stored by either path (no database, no round trip)."""
    check_socket_rate(
        key=f"msg:{session.token_hash}", limit=settings.REFLIB_RATE_MESSAGES, detail=_(TOO_FAST)
    )
    check_socket_rate(
        key=f"msg:addr:{session.address}",
        limit=settings.REFLIB_RATE_MESSAGES_ADDRESS,
        detail=_(TOO_FAST),
    )


def patron_send(*, session: PatronSession, client_msg_id: str, body: str) -> frames.Ack:
    """Store a patron's message through the ORM (``patron_message_allowed`` came first)."""
    event, _created = services.message_send(
        conversation_id=session.conversation_id,
        sender=Sender.PATRON,
        author=None,
        client_msg_id=client_msg_id,
        body=body,
    )
    return ack(event)


def patron_read(*, session: PatronSession, seq: int) -> None:
    services.read_mark(
        conversation_id=session.conversation_id, sender=Sender.PATRON, user=None, seq=seq
    )


def patron_end(*, session: PatronSession) -> None:
    services.conversation_end_by_patron(conversation_id=session.conversation_id)


def patron_checkin_answer(*, session: PatronSession, checkin_id: str, answer: str) -> None:
    services.checkin_answer(
        conversation_id=session.conversation_id, checkin_id=checkin_id, answer=answer
    )


def patron_left(*, session: PatronSession) -> None:
    services.patron_connection(conversation_id=session.conversation_id, connected=False)


# --- desk ----------


@dataclass(frozen=True)
class Desk:
    library_ids: list[int]
    welcome: frames.DeskWelcome


def desk_open(*, user: User) -> Desk | None:
    library_ids = selectors.librarian_libraries(user)
    if not library_ids:
        return None
    services.presence_touch(user=user)
    open_conversations = Conversation.objects.filter(
        librarian=user, status__in=[Status.QUEUED, Status.ACTIVE]
    ).order_by("created_at")
    welcome = frames.desk_welcome(
        user=display_name(user),
        presence=cast(frames.PresenceName, selectors.presence_of(user)),
        conversations=[
            {"id": c.public_id, "status": cast(frames.StatusName, c.status), "last_seq": c.last_seq}
            for c in open_conversations
        ],
        queue=desk_queue(library_ids=library_ids)["items"],
    )
    return Desk(library_ids=library_ids, welcome=welcome)


def desk_alive(*, user: User) -> None:
    services.presence_touch(user=user)


def sockets_alive(
    *, conversation_ids: list[int], user_ids: list[int], followed_ids: list[int]
) -> dict[int, int]:
    """A process's heartbeat (chat.heartbeat): its patrons' and librarians' sockets are
    open; returns the newest ``seq`` of every conversation its sockets follow."""
    services.patrons_alive(conversation_ids=conversation_ids)
    services.presences_touch(user_ids=user_ids)
    return last_seqs(conversation_ids=followed_ids)


def desk_presence(*, user: User, state: str) -> None:
    if state not in PresenceState.values:
        raise ChatError("invalid", _("Presence is available, away or offline."))
    services.presence_set(user=user, state=PresenceState(state))


def desk_queue(*, library_ids: list[int]) -> frames.DeskQueue:
    """The waiting list of these libraries, oldest first, at most ``REFLIB_DESK_QUEUE_ITEMS``
    items (each change sends it to every desk); ``total`` counts everyone waiting."""
    now = timezone.now()
    waiting = selectors.waiting_conversations(library_ids)
    # Plain rows, not models: every change of the waiting list costs each process this read.
    rows = waiting.values_list(
        "public_id",
        "queue__library__slug",
        "queue__slug",
        "question",
        "patron_name",
        "created_at",
        "page_url",
    )
    items: list[frames.QueueItem] = [
        {
            "conversation": public_id,
            "library": library_slug,
            "queue": Queue.address_of(library_slug=library_slug, queue_slug=queue_slug),
            "question": question,
            "name": name,
            "waiting_s": int((now - created_at).total_seconds()),
            "page_url": page_url,
        }
        for public_id, library_slug, queue_slug, question, name, created_at, page_url in rows[
            : settings.REFLIB_DESK_QUEUE_ITEMS
        ]
    ]
    total = len(items)
    if total == settings.REFLIB_DESK_QUEUE_ITEMS:
        total = waiting.count()
    return frames.desk_queue(items=items, total=total)


def _visible(user: User, public_id: str) -> Conversation:
    return services.staff_conversation(user=user, public_id=public_id)


def desk_accept(*, user: User, public_id: str) -> ConversationRef:
    conversation = _visible(user, public_id)
    services.conversation_accept(conversation_id=conversation.pk, user=user)
    return ConversationRef(conversation.pk, conversation.public_id)


def desk_view(*, user: User, public_id: str) -> ConversationRef:
    conversation = _visible(user, public_id)
    return ConversationRef(conversation.pk, conversation.public_id)


def desk_message_allowed(*, user_id: int) -> None:
    check_socket_rate(
        key=f"msg:user:{user_id}", limit=settings.REFLIB_RATE_MESSAGES, detail=_(TOO_FAST)
    )


def desk_send(
    *, user: User, public_id: str, client_msg_id: str, body: str, note: bool
) -> frames.Ack:
    """Store a librarian's message or note through the ORM (``desk_message_allowed`` first)."""
    conversation = _visible(user, public_id)
    event, _created = services.message_send(
        conversation_id=conversation.pk,
        sender=Sender.LIBRARIAN,
        author=user,
        client_msg_id=client_msg_id,
        body=body,
        note=note,
    )
    return ack(event)


def desk_read(*, user: User, public_id: str, seq: int) -> None:
    conversation = _visible(user, public_id)
    services.read_mark(conversation_id=conversation.pk, sender=Sender.LIBRARIAN, user=user, seq=seq)


def desk_transfer(*, user: User, public_id: str, to_user: str, to_queue: str, note: str) -> None:
    conversation = _visible(user, public_id)
    target_user = None
    target_queue = None
    if to_user:
        target_user = User.objects.filter(username=to_user, is_active=True).first()
        if target_user is None:
            raise ChatError("not_found", _(services.NO_SUCH_COLLEAGUE))
    if to_queue:
        target_queue = Queue.objects.by_address(to_queue)
        if target_queue is None:
            raise ChatError("not_found", _("No such queue."))
    services.conversation_transfer(
        conversation_id=conversation.pk,
        user=user,
        to_user=target_user,
        to_queue=target_queue,
        note=note,
    )


def desk_close(*, user: User, public_id: str, read_level: int | None, tags: list[Any]) -> None:
    conversation = _visible(user, public_id)
    services.conversation_close(
        conversation_id=conversation.pk,
        user=user,
        read_level=read_level,
        tags=services.clean_tags(tags),
    )


def desk_checkin(*, user: User, public_id: str) -> None:
    conversation = _visible(user, public_id)
    services.checkin_send(conversation_id=conversation.pk, user=user)


def desk_block(*, user: User, public_id: str, hours: int, reason: str) -> None:
    conversation = _visible(user, public_id)
    services.patron_block(conversation_id=conversation.pk, user=user, hours=hours, reason=reason)


# --- screen sharing ----------


@dataclass(frozen=True)
class ShareRelay:
    """Where a checked signalling frame goes: the conversation, and the librarian answering it
    (the only desk that may receive the patron's signalling)."""

    public_id: str
    librarian_id: int
    frame: frames.ShareFrame


def _share_participants(conversation: Conversation, step: str) -> int:
    """A share runs between the patron and the librarian answering an active chat; a stop is
    still taken after the chat ended (the share is simply over)."""
    if conversation.librarian_id is None or (
        conversation.status != Status.ACTIVE and step != "stop"
    ):
        raise ChatError("conflict", _("A screen can be shared only during an answered chat."))
    return conversation.librarian_id


def _share(
    conversation: Conversation,
    side: sharing.Side,
    name: str,
    step: sharing.Step,
    fields: dict[str, Any],
) -> ShareRelay:
    librarian_id = _share_participants(conversation, step)
    check_rate(
        key=f"share:{conversation.pk}:{side}",
        limit=settings.REFLIB_RATE_SHARE_SIGNALS,
        detail=_("Too many screen-sharing messages."),
    )
    outcome = sharing.share_step(
        conversation_id=conversation.pk,
        side=side,
        step=step,
        share_id=fields["share"],
        accept=bool(fields.get("accept")),
    )
    if outcome.recorded is not None:
        services.screen_sharing_record(
            conversation_id=conversation.pk,
            sharer=Sender(outcome.share.sharer),
            state=outcome.recorded,
        )
    relayed = dict(fields)
    if step == "request":
        relayed["name"] = name
    if step == "reply" and fields["accept"]:
        relayed["ice_servers"] = sharing.ice_servers(user=conversation.public_id)
        relayed["ice_transport_policy"] = settings.REFLIB_ICE_TRANSPORT_POLICY
    frame = frames.share(
        step=step, conversation=conversation.public_id, sender=side, fields=relayed
    )
    return ShareRelay(conversation.public_id, librarian_id, frame)


def patron_share(
    *, session: PatronSession, step: sharing.Step, fields: dict[str, Any]
) -> ShareRelay:
    conversation = Conversation.objects.get(pk=session.conversation_id)
    return _share(conversation, "patron", conversation.patron_display_name, step, fields)


def desk_share(
    *, user: User, public_id: str, step: sharing.Step, fields: dict[str, Any]
) -> ShareRelay:
    conversation = _visible(user, public_id)
    if conversation.librarian_id != user.pk:
        raise ChatError("forbidden", _("Only the librarian answering this chat can share screens."))
    return _share(conversation, "librarian", display_name(user), step, fields)
