"""What is said in a conversation: messages and notes, files, check-ins, read marks."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from chat import events, frames, uploads
from chat.errors import ChatError
from chat.models import Attachment, Conversation, Event, EventKind, Participant, Sender
from chat.services.base import _append, _lock
from chat.services.checks import check_can_message, check_can_see, check_owner

CHECKIN_ANSWERS = ("yes", "partly", "no")


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
                check_can_message(conversation, sender, author)
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
    check_can_message(conversation, sender, author)
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


def file_upload(
    *, conversation_id: int, sender: Sender, author: User | None, upload: UploadedFile
) -> Event:
    """Check an uploaded file (its size, its type by content, a safe name) and attach it: the
    one pipeline of the patron's and the librarian's uploads."""
    limit = int(settings.REFLIB_UPLOAD_MAX_BYTES)
    if (upload.size or 0) > limit:
        raise ChatError("too_large", _("Files may be at most %s.") % filesizeformat(limit))
    content_type = uploads.detect_content_type(upload)
    return file_attach(
        conversation_id=conversation_id,
        sender=sender,
        author=author,
        upload=upload,
        content_type=content_type,
        filename=uploads.clean_filename(upload.name or "", content_type),
    )


@transaction.atomic
def read_mark(*, conversation_id: int, sender: Sender, user: User | None, seq: int) -> None:
    conversation = Conversation.objects.get(pk=conversation_id)
    seq = min(seq, conversation.last_seq)
    public_id = conversation.public_id
    if sender == Sender.PATRON:
        Conversation.objects.filter(pk=conversation_id, patron_last_read_seq__lt=seq).update(
            patron_last_read_seq=seq
        )
        frame = frames.read(conversation=public_id, sender="patron", seq=seq)
        events.publish_live(public_id, frame, audience="staff")
    else:
        Participant.objects.filter(
            conversation_id=conversation_id, user=user, last_read_seq__lt=seq
        ).update(last_read_seq=seq)
        events.publish_live(
            public_id, frames.read(conversation=public_id, sender="librarian", seq=seq)
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
def checkin_send(*, conversation_id: int, user: User) -> Event:
    conversation = _lock(conversation_id)
    check_owner(conversation, user)
    return _append(
        conversation,
        kind=EventKind.CHECKIN,
        sender=Sender.LIBRARIAN,
        author=user,
        body=_("Does this answer your question?"),
    )
