"""Who may do what to a conversation: the checks that run before a write (Check, then do).

Each raises ``ChatError``; ``not_found`` for a conversation the user may not see, so that
nobody learns whether another library's conversation exists.
"""

from __future__ import annotations

from django.contrib.auth.models import User
from django.utils.translation import gettext as _

from chat.errors import ChatError
from chat.models import Conversation, Participant, PatronBlock, Sender, Status
from chat.selectors import librarian_libraries
from reflib.models import Library


def check_patron_not_blocked(*, library: Library, token_hash: str = "", ip: str | None) -> None:
    if PatronBlock.objects.active(library=library, token_hash=token_hash, ip=ip):
        raise ChatError("forbidden", _("You cannot start a chat with this library right now."))


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


def staff_conversation(*, user: User, public_id: str, details: bool = False) -> Conversation:
    """The conversation ``public_id`` if ``user`` may see it (``check_can_see``), else
    ``not_found``. ``details`` also loads its home library and librarian, for pages."""
    related = ["queue__library"]
    if details:
        related += ["library", "librarian__staff_profile"]
    conversation = Conversation.objects.select_related(*related).filter(public_id=public_id).first()
    if conversation is None:
        raise ChatError("not_found", _("No such conversation."))
    check_can_see(conversation, user)
    return conversation


def check_owner(conversation: Conversation, user: User) -> None:
    if not conversation.is_open:
        raise ChatError("closed", _("This conversation has ended."))
    if conversation.librarian_id != user.pk:
        raise ChatError("forbidden", _("Only the librarian answering this chat can do that."))


def check_can_message(conversation: Conversation, sender: Sender, author: User | None) -> None:
    if not conversation.is_open:
        raise ChatError("closed", _("This conversation has ended."))
    if sender == Sender.LIBRARIAN:
        if conversation.status != Status.ACTIVE:
            raise ChatError("conflict", _("Accept the conversation before writing to it."))
        if author is None or conversation.librarian_id != author.pk:
            raise ChatError("forbidden", _("Another librarian is answering this conversation."))
